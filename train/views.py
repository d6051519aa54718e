"""Augmented views of a decoded photo (numpy + Pillow), applied alike to both classes.

The order follows how a photo travels: framing (crop, flip), colour, then the losses of
re-sharing — a lower resolution, blur, and JPEG re-encoding at that lower resolution. The
result goes through ``core.preprocessing`` like an upload (resize to the model's size), so a
downscaled view reaches the model as a softer image, as a re-shared photo would.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter


@dataclass(frozen=True)
class ViewConfig:
    """Ranges and probabilities of each augmentation; a probability of 0 turns one off."""

    crop_scale: tuple[float, float] = (0.8, 1.0)  # side of the random crop, fraction
    flip: bool = True
    jitter: float = 0.15  # +- brightness, contrast and saturation
    jitter_probability: float = 0.5
    resolution: tuple[float, float] = (0.35, 1.0)  # side after downscaling, fraction
    resolution_probability: float = 0.5
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    blur_probability: float = 0.15
    jpeg_quality: tuple[int, int] = (50, 95)
    jpeg_probability: float = 0.6

    def __post_init__(self) -> None:
        low, high = self.crop_scale
        if not 0 < low <= high <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {self.crop_scale}")
        if not 0 < self.resolution[0] <= self.resolution[1] <= 1:
            raise ValueError(f"resolution must lie in (0, 1], got {self.resolution}")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(f"jpeg_quality must lie in 1..100, got {self.jpeg_quality}")


def random_crop(image: Image.Image, scale: tuple[float, float], rng: np.random.Generator):
    width, height = image.size
    fraction = rng.uniform(*scale)
    w, h = max(1, round(width * fraction)), max(1, round(height * fraction))
    left = int(rng.integers(0, width - w + 1))
    top = int(rng.integers(0, height - h + 1))
    return image.crop((left, top, left + w, top + h))


def jitter(image: Image.Image, amount: float, rng: np.random.Generator) -> Image.Image:
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        image = enhancer(image).enhance(1.0 + rng.uniform(-amount, amount))
    return image


def reencode(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(quality))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def random_view(rgb: np.ndarray, rng: np.random.Generator, config: ViewConfig) -> np.ndarray:
    """One augmented ``uint8`` RGB view of ``rgb`` (its size may differ from the input's)."""
    image = random_crop(Image.fromarray(rgb), config.crop_scale, rng)
    if config.flip and rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < config.jitter_probability:
        image = jitter(image, config.jitter, rng)
    if rng.random() < config.resolution_probability:
        fraction = rng.uniform(*config.resolution)
        size = (max(16, round(image.width * fraction)), max(16, round(image.height * fraction)))
        image = image.resize(size, Image.Resampling.BILINEAR)
    if rng.random() < config.blur_probability:
        image = image.filter(ImageFilter.GaussianBlur(radius=rng.uniform(*config.blur_sigma)))
    if rng.random() < config.jpeg_probability:
        image = reencode(
            image, int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
        )
    return np.asarray(image, dtype=np.uint8)
