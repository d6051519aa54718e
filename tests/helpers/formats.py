"""Phone and web image formats made in memory: HEIC, AVIF, a hand-built ICC profile, and
ISO-BMFF headers that lie about their size.

:func:`swapped_primaries_profile` is a minimal ICC v2 RGB display profile (matrix and gamma
curves) whose red and blue primaries are sRGB's blue and red: a pixel that is red in it is
blue in sRGB, which a colour-managed decode must show.
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image

D50 = (0.9642, 1.0, 0.8249)
SRGB_PRIMARIES = {  # D50-adapted, as in sRGB's own ICC profiles
    "r": (0.4361, 0.2225, 0.0139),
    "g": (0.3851, 0.7169, 0.0971),
    "b": (0.1431, 0.0606, 0.7141),
}


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def heic(rgb: np.ndarray, quality: int = 90, **options: object) -> bytes:
    """``rgb`` as a HEIC file (``pillow-heif``'s encoder)."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    return encoded(Image.fromarray(rgb), "HEIF", quality=quality, **options)


def avif(rgb: np.ndarray, quality: int = 90, **options: object) -> bytes:
    """``rgb`` as an AVIF file (Pillow's own encoder)."""
    return encoded(Image.fromarray(rgb), "AVIF", quality=quality, **options)


def claiming_size(data: bytes, width: int, height: int) -> bytes:
    """An ISO-BMFF image (HEIC, AVIF) whose ``ispe`` box says ``width x height``."""
    out = bytearray(data)
    box = out.index(b"ispe")
    out[box + 8 : box + 16] = struct.pack(">II", width, height)  # after version and flags
    return bytes(out)


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(xyz: tuple[float, float, float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in xyz)


def _gamma(value: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(value * 256)) + b"\0\0"


def _description(text: str) -> bytes:
    ascii_text = text.encode() + b"\0"
    body = b"desc\0\0\0\0" + struct.pack(">I", len(ascii_text)) + ascii_text
    body += struct.pack(">II", 0, 0) + struct.pack(">HB", 0, 0) + b"\0" * 67
    return body + b"\0" * (-len(body) % 4)


def swapped_primaries_profile(description: str = "Swapped primaries (test)") -> bytes:
    """ICC v2 display profile: sRGB's primaries with red and blue exchanged, gamma 2.2."""
    tags = [
        (b"desc", _description(description)),
        (b"wtpt", _xyz(D50)),
        (b"rXYZ", _xyz(SRGB_PRIMARIES["b"])),
        (b"gXYZ", _xyz(SRGB_PRIMARIES["g"])),
        (b"bXYZ", _xyz(SRGB_PRIMARIES["r"])),
        (b"rTRC", _gamma(2.2)),
        (b"gTRC", _gamma(2.2)),
        (b"bTRC", _gamma(2.2)),
        (b"cprt", b"text\0\0\0\0public domain\0\0\0"),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, payload in tags:
        table += signature + struct.pack(">II", offset + len(data), len(payload))
        data += payload + b"\0" * (-len(payload) % 4)
    size = offset + len(data)
    header = struct.pack(">I", size) + b"\0" * 4 + struct.pack(">I", 0x02100000)
    header += b"mntrRGB XYZ " + b"\0" * 12 + b"acsp" + b"\0" * 24 + struct.pack(">I", 0)
    header += b"".join(_s15(v) for v in D50) + b"\0" * 48
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data
