"""Image measurements (sharpness, JPEG quality, hashes) and the changes that match them
(aspect, size, sharpness)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from core.preprocessing import INPUT_SIZE, resize_rgb

# libjpeg's standard luminance table (quality 50); its sum scales with the quality setting.
IJG_LUMA_TABLE_SUM = 3688
SHARPNESS_SEARCH_STEPS = 12
MIN_EFFECTIVE_FRACTION = 0.2  # the strongest degradation: 1/5 of the crop's side


def estimate_jpeg_quality(image: Image.Image) -> int | None:
    """IJG quality (1..100) matching the luminance quantisation table; None if not a JPEG."""
    tables = getattr(image, "quantization", None)
    if not tables:
        return None
    scale = 100.0 * sum(tables[0]) / IJG_LUMA_TABLE_SUM
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return int(round(min(100.0, max(1.0, quality))))


def laplacian_variance(rgb: np.ndarray, size: int = INPUT_SIZE) -> float:
    """Sharpness: variance of the 4-neighbour Laplacian of the grey ``size``-square resize."""
    grey = resize_rgb(rgb, size).astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
    lap = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    return float(lap.var())


def detail(rgb: np.ndarray, size: int = INPUT_SIZE) -> float:
    """Fine detail at the model's input: mean |x - blur(x)| of the grey ``size``-square resize
    (Gaussian blur, radius 1 px; 0..255 scale). Independent of contrast far more than the
    Laplacian's variance."""
    square = Image.fromarray(resize_rgb(rgb, size)).convert("L")
    grey = np.asarray(square, dtype=np.float32)
    blurred = np.asarray(square.filter(ImageFilter.GaussianBlur(1)), dtype=np.float32)
    return float(np.abs(grey - blurred).mean())


def is_greyscale(rgb: np.ndarray, tolerance: float = 2.0) -> bool:
    """Whether the colour channels are (nearly) equal everywhere: a black-and-white photo."""
    sample = rgb[::4, ::4].astype(np.int16)
    spread = np.abs(sample[..., 0] - sample[..., 1]) + np.abs(sample[..., 1] - sample[..., 2])
    return float(spread.mean()) < tolerance


def average_hash(rgb: np.ndarray, hash_size: int = 16) -> np.ndarray:
    """Bits of a ``hash_size``-square grey thumbnail above its mean (perceptual hash)."""
    grey = resize_rgb(rgb, hash_size).astype(np.float32).mean(axis=2)
    return (grey > grey.mean()).ravel()


def grey_thumbnail(rgb: np.ndarray, size: int = 16) -> np.ndarray:
    """A ``size``-square grey thumbnail as ``uint8`` (the thumbnail shortcut probe's input)."""
    return resize_rgb(rgb, size).astype(np.float32).mean(axis=2).round().astype(np.uint8)


def trim_to_aspect(rgb: np.ndarray, aspect: float, keep_start: bool) -> np.ndarray:
    """Cut ``rgb`` to ``aspect`` (width / height) by trimming one side of the longer dimension:
    the far side if ``keep_start``, else the near side (like a face crop clipped at a border)."""
    height, width = rgb.shape[:2]
    if width / height > aspect:
        keep = max(1, round(height * aspect))
        return rgb[:, :keep] if keep_start else rgb[:, width - keep :]
    keep = max(1, round(width / aspect))
    return rgb[:keep] if keep_start else rgb[height - keep :]


def resize_to(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale to ``size`` = (width, height) with Pillow's antialiased bilinear filter."""
    if (rgb.shape[1], rgb.shape[0]) == tuple(size):
        return rgb
    resized = Image.fromarray(rgb).resize(tuple(size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def soften(rgb: np.ndarray, fraction: float) -> np.ndarray:
    """Lower the effective resolution: down to ``fraction`` of the size and back up."""
    if fraction >= 1.0:
        return rgb
    height, width = rgb.shape[:2]
    small = (max(8, round(width * fraction)), max(8, round(height * fraction)))
    image = Image.fromarray(rgb).resize(small, Image.Resampling.BILINEAR)
    return np.asarray(image.resize((width, height), Image.Resampling.BICUBIC), dtype=np.uint8)


def match_sharpness(rgb: np.ndarray, target: float) -> tuple[np.ndarray, float]:
    """Soften ``rgb`` until its :func:`laplacian_variance` is about ``target``.

    Bisects the effective-resolution fraction in [MIN_EFFECTIVE_FRACTION, 1]; an image already
    at or below the target is returned unchanged (a fraction of 1.0).
    """
    if laplacian_variance(rgb) <= target:
        return rgb, 1.0
    low, high = MIN_EFFECTIVE_FRACTION, 1.0
    for _ in range(SHARPNESS_SEARCH_STEPS):
        middle = (low + high) / 2
        if laplacian_variance(soften(rgb, middle)) > target:
            high = middle
        else:
            low = middle
    return soften(rgb, low), low
