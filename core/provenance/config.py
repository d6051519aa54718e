"""How much work reading a file's provenance evidence may take: one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024


@dataclass(frozen=True)
class EvidenceConfig:
    """Bounds and trust settings of :class:`core.provenance.EvidenceReader`."""

    c2pa: bool = True  # verify C2PA manifests (needs the optional c2pa-python package)
    trust_anchors: Path | None = None  # PEM file of C2PA signers' root certificates to trust
    timeout_s: float = 2.0  # longest C2PA validation of one file
    max_file_bytes: int = 64 * MB  # larger files: metadata read, C2PA not verified
    max_block_bytes: int = 1 * MB  # largest metadata block (XMP, EXIF, text, decompressed)
    max_blocks: int = 32  # most metadata blocks read per file
    max_segments: int = 20_000  # most JPEG segments / PNG or WebP chunks walked per file
    max_findings: int = 16  # most findings reported per file

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")
        for name in ("max_file_bytes", "max_block_bytes", "max_blocks", "max_segments",
                     "max_findings"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
