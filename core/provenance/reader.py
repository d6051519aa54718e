"""``EvidenceReader``: every reader of this package, in order, within the configured bounds.

A file with no metadata block at all (a plain camera JPEG without EXIF, a bare PNG) costs
only the container walk. C2PA validation (hashing the file, checking the signature) runs on
the reader's own small thread pool with a timeout, so a slow file cannot hold its caller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import CancelledError, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from core.provenance.c2pa_manifest import C2paVerifier
from core.provenance.config import EvidenceConfig
from core.provenance.containers import Blocks, scan
from core.provenance.exif import read_exif
from core.provenance.findings import STRENGTHS, UNVERIFIED, Finding, unreadable
from core.provenance.pngtext import read_png_text
from core.provenance.xmp import read_xmp

logger = logging.getLogger("core.provenance")
QUICK_STEPS = 64  # segments / chunks :meth:`EvidenceReader.nothing_to_read` walks at most


def load_trust_anchors(path) -> str:
    """The PEM text of a trust anchor file; a clear ValueError if it holds no certificate."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"trust_anchors: cannot read {path}: {exc}") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ValueError(f"trust_anchors: {path} holds no PEM certificate")
    return text


def _guarded(kind: str, read: Callable[..., list[Finding]], *args) -> list[Finding]:
    """A reader's findings; anything it raises becomes an ``unreadable`` finding."""
    try:
        return read(*args)
    except Exception as exc:  # malformed metadata must never fail the request
        logger.debug("reading %s failed", kind, exc_info=True)
        return [unreadable(kind, f"{type(exc).__name__}: {exc}")]


class EvidenceReader:
    """Reads the provenance evidence of encoded images; one per app or bulk worker."""

    def __init__(self, config: EvidenceConfig | None = None) -> None:
        self.config = config or EvidenceConfig()
        pem = load_trust_anchors(self.config.trust_anchors) if self.config.trust_anchors else None
        self.c2pa: C2paVerifier | None = None
        self.c2pa_problem = "turned off" if not self.config.c2pa else None
        if self.config.c2pa:
            try:
                self.c2pa = C2paVerifier(pem)
            except (ImportError, OSError) as exc:
                self.c2pa_problem = f"the c2pa-python package is not usable ({exc})"
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="c2pa") if self.c2pa else None

    def describe(self) -> str:
        """One line for the server log: what evidence can be read."""
        if self.c2pa is None:
            return f"evidence: C2PA unavailable: {self.c2pa_problem}; metadata still read"
        trust = "with trust anchors" if self.config.trust_anchors else "no trust list"
        return f"evidence: C2PA available (c2pa-rs {self.c2pa.version}, {trust})"

    def nothing_to_read(self, data: bytes) -> bool:
        """True when a walk of at most ``QUICK_STEPS`` segments shows ``data`` carries no
        metadata block at all (a plain JPEG: a few microseconds, cheap enough to run on an
        event loop); False means :meth:`read` has work to do."""
        try:
            blocks = scan(data, self.config, steps=QUICK_STEPS)
        except Exception:  # let read() report it
            return False
        return blocks.complete and blocks.empty

    def read(self, data: bytes) -> list[dict]:
        """The findings of ``data`` as JSON-ready dicts, strongest first (empty: none)."""
        return [finding.to_dict() for finding in self.findings(data)]

    def findings(self, data: bytes) -> list[Finding]:
        try:
            blocks = scan(data, self.config)
        except Exception as exc:  # a walk bug must not fail the request either
            return [unreadable("container", f"{type(exc).__name__}: {exc}")]
        if blocks.empty:
            return []
        found = list(blocks.problems)
        for block in blocks.exif:
            found += _guarded("exif", read_exif, block)
        for packet in blocks.xmp:
            found += _guarded("xmp", read_xmp, packet)
        if blocks.text:
            found += _guarded("png_text", read_png_text, blocks.text)
        if blocks.c2pa:
            found += self._c2pa(data, blocks)
        found.sort(key=lambda finding: STRENGTHS.index(finding.strength))
        return found[: self.config.max_findings]

    def _c2pa(self, data: bytes, blocks: Blocks) -> list[Finding]:
        if self.c2pa is None or self._pool is None:
            return [Finding("c2pa", UNVERIFIED, "a C2PA manifest is present but was not "
                            f"checked: C2PA {self.c2pa_problem}")]  # fmt: skip
        if len(data) > self.config.max_file_bytes:
            limit = self.config.max_file_bytes
            return [unreadable("c2pa", f"the file ({len(data)} bytes) is over the limit of "
                               f"{limit} bytes for C2PA validation")]  # fmt: skip
        assert blocks.mime is not None
        try:
            future = self._pool.submit(_guarded, "c2pa", self.c2pa.read, data, blocks.mime)
            return future.result(timeout=self.config.timeout_s)
        except FutureTimeout:
            future.cancel()
            return [unreadable("c2pa", f"validation took longer than {self.config.timeout_s} s")]
        except (CancelledError, RuntimeError):  # the reader was closed (server shutting down)
            return [unreadable("c2pa", "the reader is shut down")]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
