"""Hostile and unusual image files for the reliability suite, all built in memory in milliseconds.

Every builder is cached: the same bytes go to the server and to the reference computation.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib

import numpy as np
from helpers import jpeg_image, noise_rgb, png_image, truncated
from helpers.formats import avif, claiming_size, heic, swapped_primaries_profile
from PIL import Image

BOMB_SIDE = 20_000  # 400 megapixels: 10x the server's default --max-pixels


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _rgb(seed: int = 1, height: int = 40, width: int = 48, mean: float = 128.0) -> Image.Image:
    return Image.fromarray(noise_rgb(seed, height, width, mean))


def _frames() -> list[Image.Image]:
    """Three frames of clearly different brightness: only the first one may count."""
    return [_rgb(seed, mean=mean) for seed, mean in ((2, 60.0), (3, 200.0), (4, 130.0))]


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_from_rows(
    width: int, height: int, bit_depth: int, color_type: int, row: bytes, rows: int | None = None
) -> bytes:
    """A valid PNG whose every scanline is ``row`` (filter byte 0 added), compressed as a
    stream so a huge image never exists in memory uncompressed."""
    compressor = zlib.compressobj(9)
    line = b"\x00" + row
    block = line * max(1, 65536 // len(line))
    lines_per_block = len(block) // len(line)
    left = height if rows is None else rows
    parts = []
    while left > 0:
        take = min(left, lines_per_block)
        parts.append(compressor.compress(block[: take * len(line)]))
        left -= take
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", b"".join(parts))
        + png_chunk(b"IEND", b"")
    )


@functools.cache
def pixel_bomb() -> bytes:
    """A real, complete 20000 x 20000 1-bit PNG (all black): about 50 kB on the wire,
    1.2 GB as 8-bit RGB once decoded."""
    return png_from_rows(BOMB_SIDE, BOMB_SIDE, 1, 0, b"\x00" * (BOMB_SIDE // 8))


@functools.cache
def jpeg_claiming_huge_size() -> bytes:
    """A small JPEG whose frame header says 65000 x 65000 pixels."""
    data = bytearray(jpeg_image(5, 32, 32))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65000, 65000)
    return bytes(data)


@functools.cache
def png16_rgb() -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow reads it as 8-bit RGB)."""
    rng = np.random.default_rng(7)
    values = rng.integers(0, 65535, size=(24, 3), dtype=np.uint16).astype(">u2").tobytes()
    return png_from_rows(24, 20, 16, 2, values)


@functools.cache
def png16_grey() -> bytes:
    ramp = (np.arange(40 * 48, dtype=np.uint32).reshape(40, 48) * 30 % 65536).astype(np.uint16)
    return _save(Image.fromarray(ramp), "PNG")


@functools.cache
def corrupt_jpeg_tables() -> bytes:
    """A JPEG whose first Huffman table is overwritten with 0xFF bytes."""
    data = bytearray(jpeg_image(3, 64, 64))
    table = data.index(b"\xff\xc4")
    data[table + 4 : table + 40] = b"\xff" * 36
    return bytes(data)


@functools.cache
def corrupt_jpeg_scan() -> bytes:
    """A JPEG with garbage in its entropy-coded data (libjpeg conceals it and decodes)."""
    data = bytearray(jpeg_image(3, 64, 64))
    scan = data.index(b"\xff\xda")
    data[scan + 20 : scan + 400] = b"\x5a" * 380
    return bytes(data)


@functools.cache
def corrupt_png_crc() -> bytes:
    """A PNG with one flipped byte in its image data (the chunk CRC no longer matches)."""
    data = bytearray(png_image(3, 64, 64))
    data[data.index(b"IDAT") + 10] ^= 0xFF
    return bytes(data)


@functools.cache
def phone_heic() -> bytes:
    return heic(np.asarray(_rgb(8)))


@functools.cache
def phone_avif() -> bytes:
    return avif(np.asarray(_rgb(9)))


def pdf_document() -> bytes:
    return _save(_rgb(), "PDF")


HTML_PAGE = b"<!doctype html><html><body><script>alert(1)</script><p>hi</p></body></html>"
SVG_IMAGE = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
    b'<rect width="64" height="64" fill="red"/><script>alert(1)</script></svg>'
)


# Formats the server accepts (core.preprocessing.SUPPORTED_FORMATS), in unusual variants.
SUPPORTED = {
    "animated GIF (first frame used)": lambda: _save(
        _frames()[0], "GIF", save_all=True, append_images=_frames()[1:], duration=40, loop=0
    ),
    "animated WebP (first frame used)": lambda: _save(
        _frames()[0], "WEBP", save_all=True, append_images=_frames()[1:], lossless=True
    ),
    "multi-page TIFF (first page used)": lambda: _save(
        _frames()[0], "TIFF", save_all=True, append_images=_frames()[1:]
    ),
    "16-bit greyscale PNG": png16_grey,
    "16-bit RGB PNG": png16_rgb,
    "CMYK JPEG": lambda: _save(_rgb().convert("CMYK"), "JPEG"),
    "greyscale JPEG": lambda: _save(_rgb().convert("L"), "JPEG"),
    "greyscale PNG": lambda: _save(_rgb().convert("L"), "PNG"),
    "RGBA PNG (alpha over white)": lambda: _save(_rgb().convert("RGBA"), "PNG"),
    "palette PNG with transparency": lambda: _save(_rgb().convert("P"), "PNG", transparency=0),
    "1-bit PNG": lambda: _save(_rgb().convert("1"), "PNG"),
    "BMP": lambda: _save(_rgb(), "BMP"),
    "1x1 PNG": lambda: _save(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"),
    "JPEG with corrupt scan data (concealed by libjpeg)": corrupt_jpeg_scan,
    "HEIC (sent as image/jpeg)": phone_heic,
    "AVIF (sent as image/jpeg)": phone_avif,
    "animated PNG (first frame used)": lambda: _save(
        _frames()[0], "PNG", save_all=True, append_images=_frames()[1:]
    ),
    "PNG with a non-sRGB colour profile": lambda: _save(
        _rgb(), "PNG", icc_profile=swapped_primaries_profile()
    ),
    "PNG with a broken colour profile": lambda: _save(_rgb(), "PNG", icc_profile=b"\0" * 200),
}

# An AVIF whose header claims 7500 x 7500 (56 MP, over the 50 MP limit): 413 unread.
LYING_SIZE = {
    "AVIF header claiming 7500x7500": lambda: claiming_size(phone_avif(), 7500, 7500),
}

# Formats Pillow recognises but the server refuses with 415.
UNSUPPORTED = {
    "ICO": lambda: _save(_rgb(), "ICO"),
    "TGA": lambda: _save(_rgb(), "TGA"),
    "PCX": lambda: _save(_rgb(), "PCX"),
    "PPM": lambda: _save(_rgb(), "PPM"),
    "JPEG 2000": lambda: _save(_rgb(), "JPEG2000"),
    "XBM": lambda: _save(_rgb().convert("1"), "XBM"),
    "SGI": lambda: _save(_rgb(), "SGI"),
}

# Not an image at all, or broken: 400.
UNREADABLE = {
    "text bytes": lambda: b"hello, I am definitely not a picture\n" * 10,
    "0-byte file": lambda: b"",
    "HTML disguised as .jpg": lambda: HTML_PAGE,
    "SVG disguised as .jpg": lambda: SVG_IMAGE,
    "PDF disguised as .jpg": pdf_document,
    "truncated JPEG": lambda: truncated(jpeg_image(3, 64, 64)),
    "truncated PNG": lambda: truncated(png_image(3, 64, 64)),
    "JPEG with corrupt Huffman table": corrupt_jpeg_tables,
    "PNG with a corrupt data chunk": corrupt_png_crc,
    "truncated HEIC": lambda: truncated(phone_heic()),
    # libheif sizes the image from its coded stream; a header that disagrees is refused
    "HEIC header claiming 7000x7000": lambda: claiming_size(phone_heic(), 7000, 7000),
    "truncated AVIF": lambda: truncated(phone_avif()),
}

GOOD_IMAGES = {
    "PNG 32x32": lambda: png_image(11, mean=170.0),
    "JPEG 48x40": lambda: jpeg_image(12, 40, 48, mean=80.0),
}


# --- video ---------------------------------------------------------------------------------


@functools.cache
def _clip(name: str, **options: object) -> bytes:
    """A small clip written with OpenCV (``helpers.videos.write_clip``) into a scratch folder."""
    import tempfile
    from pathlib import Path

    from helpers.videos import write_clip

    with tempfile.TemporaryDirectory() as folder:
        return write_clip(Path(folder) / name, **options).read_bytes()


@functools.cache
def huge_frame_avi() -> bytes:
    """Two real 4000 x 2200 MJPEG frames (8.8 MP, over the 3840 x 2160 limit): 125 kB."""
    import tempfile
    from pathlib import Path

    import cv2

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "huge.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (4000, 2200))
        for _ in range(2):
            writer.write(np.full((2200, 4000, 3), 90, np.uint8))
        writer.release()
        return path.read_bytes()


def mp4_clip() -> bytes:
    return _clip("c.mp4", count=10)


def mjpeg_avi() -> bytes:
    return _clip("c.avi", count=6, fourcc="MJPG")


def zeroed_avi() -> bytes:
    from helpers.videos import avi_with_frames_zeroed

    return avi_with_frames_zeroed(mjpeg_avi())


# name -> (file, expected status, error code): each sent to /v1/predict/video as video/mp4
HOSTILE_VIDEOS = {
    "truncated MP4": (lambda: truncated(mp4_clip()), 400, "truncated_video"),
    "AVI with no decodable frame": (zeroed_avi, 400, "no_decodable_frames"),
    "AVI of 4000x2200 frames (over 3840x2160)": (huge_frame_avi, 413, "frame_too_large"),
    "AVI with an unknown codec (ZZZZ)": (
        lambda: mjpeg_avi().replace(b"MJPG", b"ZZZZ"), 415, "unsupported_video_codec"),
    "PNG image sent as a video": (lambda: png_image(3, 64, 64), 400, "bad_video"),
    "HTML sent as video/mp4": (lambda: HTML_PAGE, 400, "bad_video"),
    "empty video body": (lambda: b"", 400, "bad_video"),
}  # fmt: skip
