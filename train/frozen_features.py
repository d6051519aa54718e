"""Frozen-backbone features of a dataset's stored crops, computed once and cached.

``lite0-imagenet``: EfficientNet-Lite0 with its ImageNet weights (``train.efficientnet_lite``),
global-average-pooled ``head_relu`` (1280 values), on the contract's input (the stored crop
resized to 224 px). Cached as ``DATASET/features/<name>.npz`` (files and a float16 matrix);
a cache is reused only when it lists exactly the files asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.preprocessing import PreprocessConfig, preprocess_file

Extractor = Callable[[np.ndarray], np.ndarray]  # N x 224 x 224 x 3 float32 -> N x D
EXTRACTORS = ("lite0-imagenet",)


def lite0_imagenet() -> Extractor:
    """Pooled ``head_relu`` features of the ImageNet Lite0 (Keras, CPU)."""
    import keras

    from train.efficientnet_lite import build_lite0_pretrained

    base = build_lite0_pretrained()
    pooled = keras.Model(base.input, keras.layers.GlobalAveragePooling2D()(base.output))
    return lambda batch: np.asarray(pooled.predict_on_batch(batch))


def extractor(name: str) -> Extractor:
    if name == "lite0-imagenet":
        return lite0_imagenet()
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
