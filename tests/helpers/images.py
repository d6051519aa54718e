"""Small encoded test images, including broken and hostile ones."""

from __future__ import annotations

import struct
import zlib

import numpy as np

from core.preprocessing import encode_jpeg, encode_png


def noise_rgb(seed: int, height: int = 32, width: int = 32, mean: float = 128.0) -> np.ndarray:
    """Reproducible uint8 RGB noise around ``mean``."""
    rng = np.random.default_rng(seed)
    values = rng.normal(mean, 30.0, (height, width, 3))
    return np.clip(values, 0, 255).astype(np.uint8)


def png_image(seed: int = 0, height: int = 32, width: int = 32, mean: float = 128.0) -> bytes:
    return encode_png(noise_rgb(seed, height, width, mean))


def jpeg_image(seed: int = 0, height: int = 32, width: int = 32, mean: float = 128.0) -> bytes:
    return encode_jpeg(noise_rgb(seed, height, width, mean))


def distinct_pngs(count: int, height: int = 32, width: int = 32) -> list[bytes]:
    """``count`` PNGs with clearly different mean brightness (so model outputs differ)."""
    means = np.linspace(40.0, 215.0, count) if count > 1 else [128.0]
    return [png_image(i, height, width, float(mean)) for i, mean in enumerate(means)]


def truncated(data: bytes) -> bytes:
    """The first half of an encoded image."""
    return data[: len(data) // 2]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def pixel_bomb_png(width: int = 8000, height: int = 8000) -> bytes:
    """A ~100 byte PNG whose header claims ``width x height`` pixels (default 64 M)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )
