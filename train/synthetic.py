"""A tiny synthetic image set FOR TESTS ONLY. This is NOT a real dataset of faces.

It exists so that tests can run the whole training / evaluation pipeline offline in
seconds. Nothing trained on it says anything about real deepfakes.

* ``real`` images: a smooth random colour gradient plus mild noise;
* ``fake`` images: the same kind of background plus a learnable cue, a bright
  high-frequency checkerboard patch in a random corner.

File names are ``id<identity>_<k>.<ext>``: images of one "identity" share their background
colours (near-duplicates), which lets tests check that a grouped split keeps them together.
Everything is seeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.options import check_at_least, check_choice
from core.preprocessing import encode_jpeg, encode_png

CLASS_FOLDERS = ("real", "fake")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SyntheticConfig:
    """What to write: how many images, how big, which format, how they are laid out."""

    per_class: int = 20  # images per class (per split for the split layout)
    size: int = 48
    images_per_identity: int = 2
    fmt: str = "png"  # png | jpg
    seed: int = 0

    def __post_init__(self) -> None:
        check_at_least(self, 1, "per_class", "size", "images_per_identity")
        check_choice(self, "fmt", ("png", "jpg"))


def make_image(fake: bool, rng: np.random.Generator, size: int, colours: np.ndarray) -> np.ndarray:
    """One ``uint8`` RGB image; ``fake`` ones carry the checkerboard cue."""
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float64)
    mix = np.add.outer(ramp * rng.uniform(0.3, 1.0), ramp * rng.uniform(0.3, 1.0)) / 2.0
    image = colours[0] * (1.0 - mix[..., None]) + colours[1] * mix[..., None]
    image = image + rng.normal(0.0, 6.0, image.shape)
    if fake:
        patch = max(4, size // 3)
        yy, xx = np.indices((patch, patch))
        checker = np.where((yy // 2 + xx // 2) % 2 == 0, 250.0, 20.0)[..., None]
        top = 0 if rng.random() < 0.5 else size - patch
        left = 0 if rng.random() < 0.5 else size - patch
        image[top : top + patch, left : left + patch] = checker
    return np.clip(image, 0, 255).astype(np.uint8)


def _encode(rgb: np.ndarray, fmt: str) -> bytes:
    if fmt == "png":
        return encode_png(rgb)
    if fmt in ("jpg", "jpeg"):
        return encode_jpeg(rgb, quality=95)
    raise ValueError(f"unsupported synthetic format {fmt!r}: use 'png' or 'jpg'")


def write_class_folder(folder: Path, fake: bool, count: int, config: SyntheticConfig, seed: int):
    """Write ``count`` images of one class into ``folder``; returns the paths written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    colours = rng.uniform(30, 220, (2, 3))
    for index in range(count):
        identity, k = divmod(index, config.images_per_identity)
        if k == 0:
            colours = rng.uniform(30, 220, (2, 3))
        path = folder / f"id{identity:04d}_{k}.{config.fmt}"
        path.write_bytes(_encode(make_image(fake, rng, config.size, colours), config.fmt))
        paths.append(path)
    return paths


def write_flat(root: str | Path, config: SyntheticConfig | None = None) -> Path:
    """Write ``root/{real,fake}/*`` (the input of ``python -m train.split``)."""
    config = config or SyntheticConfig()
    root = Path(root)
    for label, name in enumerate(CLASS_FOLDERS):
        write_class_folder(root / name, bool(label), config.per_class, config, config.seed + label)
    return root


def write_splits(root: str | Path, config: SyntheticConfig | None = None) -> Path:
    """Write ``root/{train,val,test}/{real,fake}/*``, ``per_class`` images per class and split."""
    config = config or SyntheticConfig()
    root = Path(root)
    for split_index, split in enumerate(SPLITS):
        for label, name in enumerate(CLASS_FOLDERS):
            seed = config.seed + 1000 * (split_index + 1) + label
            write_class_folder(root / split / name, bool(label), config.per_class, config, seed)
    return root
