"""EXIF: the ``Software`` tag, reported only when it names an image generator (a camera's
firmware version or an editor is not reported). Parsed by Pillow; unsigned."""

from __future__ import annotations

from PIL import Image

from core.provenance.findings import UNSIGNED, Finding, clean, unreadable
from core.provenance.generators import generator_named

SOFTWARE = 0x0131


def read_exif(block: bytes) -> list[Finding]:
    """Findings of one EXIF block (starting with ``Exif\\0\\0``)."""
    exif = Image.Exif()
    try:
        exif.load(block)
        software = exif.get(SOFTWARE)
    except Exception as exc:  # Pillow raises several types on broken TIFF structures
        return [unreadable("exif", f"broken EXIF structure ({type(exc).__name__}: {exc})")]
    if isinstance(software, bytes):
        software = software.decode("latin-1")
    if not isinstance(software, str):
        return []
    generator = generator_named(software)
    if generator is None:
        return []
    return [Finding("exif", UNSIGNED, f"EXIF Software names the generator {generator}",
                    "ai_generated", "Software",
                    {"generator": generator, "value": clean(software, 80)})]  # fmt: skip
