"""Frozen-backbone features of a dataset's stored crops, computed once and cached.

All on EfficientNet-Lite0 with its ImageNet weights (``train.efficientnet_lite``), on the
contract's input (the stored crop resized to 224 px):

* ``lite0-imagenet``: global-average-pooled ``head_relu`` (1280 values): content and all;
* ``lite0-texture``: per-channel mean and standard deviation of two early blocks' outputs
  (``block2b``, 56 px, and ``block3b``, 28 px; 128 values): local texture statistics with
  little room for what the face looks like;
* ``lite0-residual``: ``lite0-imagenet`` on the high-pass residual ``x - blur(x)`` (Gaussian,
  sigma 1 px, scaled by 4 about mid-grey): noise and fine detail without the face's shape.

Cached as ``DATASET/features/<name>.npz`` (files and a float16 matrix); a cache is reused
only when it lists exactly the files asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.preprocessing import PreprocessConfig, preprocess_file

Extractor = Callable[[np.ndarray], np.ndarray]  # N x 224 x 224 x 3 float32 -> N x D
EXTRACTORS = ("lite0-imagenet", "lite0-texture", "lite0-residual")
TEXTURE_BLOCKS = ("block2b_add", "block3b_add")
RESIDUAL_SIGMA = 1.0
RESIDUAL_GAIN = 4.0


def lite0_imagenet() -> Extractor:
    """Pooled ``head_relu`` features of the ImageNet Lite0 (Keras, CPU)."""
    import keras

    from train.efficientnet_lite import build_lite0_pretrained

    base = build_lite0_pretrained()
    pooled = keras.Model(base.input, keras.layers.GlobalAveragePooling2D()(base.output))
    return lambda batch: np.asarray(pooled.predict_on_batch(batch))


def lite0_texture() -> Extractor:
    """Mean and standard deviation per channel of the ImageNet Lite0's early blocks."""
    import keras

    from train.efficientnet_lite import build_lite0_pretrained

    base = build_lite0_pretrained()
    early = keras.Model(base.input, [base.get_layer(name).output for name in TEXTURE_BLOCKS])

    def run(batch: np.ndarray) -> np.ndarray:
        maps = [np.asarray(m) for m in early.predict_on_batch(batch)]
        return np.concatenate([f(m, axis=(1, 2)) for m in maps for f in (np.mean, np.std)], 1)

    return run


def high_pass(batch: np.ndarray) -> np.ndarray:
    """``x - blur(x)`` per image and channel, scaled by :data:`RESIDUAL_GAIN` about 127.5."""
    from scipy.ndimage import gaussian_filter

    blurred = gaussian_filter(batch, sigma=(0, RESIDUAL_SIGMA, RESIDUAL_SIGMA, 0))
    return np.clip(127.5 + RESIDUAL_GAIN * (batch - blurred), 0.0, 255.0).astype(np.float32)


def extractor(name: str) -> Extractor:
    if name == "lite0-imagenet":
        return lite0_imagenet()
    if name == "lite0-texture":
        return lite0_texture()
    if name == "lite0-residual":
        pooled = lite0_imagenet()
        return lambda batch: pooled(high_pass(batch))
    raise ValueError(f"unknown features {name!r}; choose from {', '.join(EXTRACTORS)}")


def cached_features(
    dataset: Path, files: list[str], name: str, batch_size: int = 64, progress: bool = True
) -> np.ndarray:
    """``len(files) x D`` features of ``dataset/<file>`` (float32), from the cache when it
    holds exactly these files."""
    cache = dataset / "features" / f"{name}.npz"
    if cache.exists():
        stored = np.load(cache, allow_pickle=False)
        if stored["files"].tolist() == files:
            return stored["features"].astype(np.float32)
    run = extractor(name)
    config = PreprocessConfig(size=224)
    chunks = []
    for start in tqdm(range(0, len(files), batch_size), desc=f"{name} features", unit="batch",
                      disable=not progress):  # fmt: skip
        batch = np.stack(
            [preprocess_file(str(dataset / f), config) for f in files[start : start + batch_size]]
        )
        chunks.append(run(batch).astype(np.float16))
    features = np.concatenate(chunks)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, files=np.asarray(files), features=features)
    return features.astype(np.float32)
