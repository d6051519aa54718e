"""Degradations of a decoded test image, applied *before* preprocessing (no TensorFlow).

A :data:`Transform` takes the decoded ``uint8`` RGB image and returns either a new RGB array
or encoded bytes (for example a JPEG re-encode); the result then goes through
``core.preprocessing`` exactly like an upload would. :data:`ROBUSTNESS` is the set scored by
``python -m train.evaluate --robustness``; add an entry to score another degradation.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
from PIL import Image, ImageFilter

from core.preprocessing import encode_jpeg

Transform = Callable[[np.ndarray], np.ndarray | bytes]


def jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """Re-encode as JPEG at ``quality`` (Pillow, via core.preprocessing)."""
    return encode_jpeg(rgb, quality)


def downscale(rgb: np.ndarray, factor: float) -> np.ndarray:
    """Shrink by ``factor`` (antialiased bilinear), as a low-resolution upload would be."""
    height, width = rgb.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))


def blur(rgb: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` pixels (Pillow's GaussianBlur)."""
    return np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(radius=sigma)))


def reshared(rgb: np.ndarray, side: int = 256, quality: int = 75) -> bytes:
    """As social networks re-share: longer side down to ``side`` (if larger), JPEG ``quality``."""
    height, width = rgb.shape[:2]
    if max(height, width) > side:
        rgb = downscale(rgb, side / max(height, width))
    return encode_jpeg(rgb, quality)


ROBUSTNESS: dict[str, Transform] = {
    "jpeg_q95": partial(jpeg, quality=95),
    "jpeg_q75": partial(jpeg, quality=75),
    "jpeg_q50": partial(jpeg, quality=50),
    "jpeg_q30": partial(jpeg, quality=30),
    "downscale_x0.5": partial(downscale, factor=0.5),
    "blur_sigma1": partial(blur, sigma=1.0),
    "reshared_256_q75": reshared,
}
