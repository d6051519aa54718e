"""Request payloads: real image files from a folder, or seeded synthetic JPEGs.

The load generator sends the encoded bytes as they are; the in-process measurements
decode them once with :mod:`core.preprocessing` (the one preprocessing path) into batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.preprocessing import PreprocessConfig, encode_jpeg, preprocess_bytes

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
DEFAULT_IMAGE_DIR = Path("data/detector/test")


@dataclass(frozen=True)
class ImageSet:
    """Encoded images to send, and where they came from."""

    payloads: tuple[bytes, ...]
    source: str
    content_type: str = "image/jpeg"

    def describe(self) -> dict:
        sizes = [len(payload) for payload in self.payloads]
        return {
            "source": self.source,
            "count": len(self.payloads),
            "mean_bytes": int(np.mean(sizes)) if sizes else 0,
        }


def synthetic_jpegs(count: int = 32, size: int = 256, seed: int = 0) -> list[bytes]:
    """``count`` seeded ``size x size`` JPEGs: smooth colour fields with noise and shapes."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, size)
    images = []
    for _ in range(count):
        top, bottom = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        mix = (
            np.add.outer(ramp * rng.uniform(0.2, 1.0), ramp * rng.uniform(0.2, 1.0))[..., None] / 2
        )
        rgb = top * (1 - mix) + bottom * mix + rng.normal(0, 12, (size, size, 3))
        yy, xx = np.indices((size, size))
        cy, cx = rng.uniform(0.3, 0.7, 2) * size
        radius = rng.uniform(0.15, 0.3) * size
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
        rgb[disc] = rgb[disc] * 0.5 + rng.uniform(0, 255, 3) * 0.5
        images.append(encode_jpeg(np.clip(rgb, 0, 255).astype(np.uint8), quality=90))
    return images


def load_images(folder: Path | None = None, limit: int = 64, synthetic_size: int = 256) -> ImageSet:
    """Up to ``limit`` image files under ``folder`` (recursive, sorted), else synthetic JPEGs.

    ``folder=None`` means ``data/detector/test`` when it holds images. A folder that is given
    explicitly but holds no images is an error, not a silent fallback.
    """
    explicit = folder is not None
    folder = Path(folder) if explicit else DEFAULT_IMAGE_DIR
    files = []
    if folder.is_dir():
        files = sorted(
            path
            for path in folder.rglob("*")
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
        )
    if not files:
        if explicit:
            raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
        payloads = synthetic_jpegs(count=min(limit, 32), size=synthetic_size)
        return ImageSet(tuple(payloads), f"synthetic {synthetic_size}x{synthetic_size} JPEGs")
    step = max(1, len(files) // limit)  # spread the picks over classes / sub-folders
    chosen = files[::step][:limit]
    suffixes = {path.suffix.lower() for path in chosen}
    content_type = "image/jpeg" if suffixes <= {".jpg", ".jpeg"} else "application/octet-stream"
    return ImageSet(
        tuple(path.read_bytes() for path in chosen),
        f"{len(chosen)} files from {folder}",
        content_type,
    )


def decoded_batch(images: ImageSet, batch_size: int, input_size: int = 224) -> np.ndarray:
    """A ``(batch_size, size, size, 3)`` float32 batch, cycling through the images."""
    config = PreprocessConfig(size=input_size)
    decoded = [preprocess_bytes(payload, config) for payload in images.payloads[:batch_size]]
    rows = [decoded[index % len(decoded)] for index in range(batch_size)]
    return np.stack(rows).astype(np.float32, copy=False)
