"""tf.data pipelines over a checked split (see :mod:`train.files`).

paths (seeded shuffle) -> decode with ``core.preprocessing`` (``tf.numpy_function``,
parallel) -> cache (``uint8``) -> shuffle (train) -> batch -> augment (train) -> prefetch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from core.options import check_at_least, check_choice
from core.preprocessing import (
    PreprocessConfig,
    decode_rgb,
    preprocess_bytes,
    preprocess_file,
    preprocess_rgb,
)
from train.files import SplitFiles
from train.transforms import Transform

AUTOTUNE = tf.data.AUTOTUNE


@dataclass(frozen=True)
class PipelineConfig:
    """Batching, shuffling and caching of one pipeline."""

    image_size: int = 224
    batch_size: int = 32
    seed: int = 0
    shuffle_buffer: int = 2048
    cache: str = "memory"  # memory (decoded uint8 images, about 150 kB each at 224) | none

    def __post_init__(self) -> None:
        check_at_least(self, 1, "image_size", "batch_size", "shuffle_buffer")
        check_choice(self, "cache", ("memory", "none"))


def load_image(path: str, config: PreprocessConfig, transform: Transform | None = None):
    """Model input for one file, optionally degraded by ``transform`` before preprocessing."""
    if transform is None:
        return preprocess_file(path, config)
    with open(path, "rb") as handle:
        changed = transform(decode_rgb(handle.read(), config.max_pixels))
    if isinstance(changed, bytes):
        return preprocess_bytes(changed, config)
    return preprocess_rgb(changed, config)


def decoder(
    config: PreprocessConfig, transform: Transform | None = None
) -> Callable[[tf.Tensor], tf.Tensor]:
    """``path -> uint8 (size, size, 3)`` through the one preprocessing module."""

    def decode_numpy(path: bytes) -> np.ndarray:
        # core.preprocessing returns float32 holding whole numbers 0..255: uint8 loses
        # nothing and needs a quarter of the cache memory.
        return load_image(path.decode("utf-8"), config, transform).astype(np.uint8)

    def decode(path: tf.Tensor) -> tf.Tensor:
        image = tf.numpy_function(decode_numpy, [path], tf.uint8, stateful=False)
        image.set_shape((config.size, config.size, 3))
        return image

    return decode


def make_dataset(
    files: SplitFiles,
    config: PipelineConfig,
    training: bool = False,
    augment: Callable[[tf.Tensor], tf.Tensor] | None = None,
    transform: Transform | None = None,
) -> tf.data.Dataset:
    """Batches of ``(float32 images in [0, 255], float32 labels)`` for one split.

    ``training`` shuffles (seeded, reshuffled every epoch) and applies ``augment``.
    Evaluation pipelines keep the order of ``files.paths``; ``transform`` (evaluation only)
    changes each decoded image before preprocessing.
    """
    paths = np.asarray(files.paths)
    labels = np.asarray(files.labels, dtype=np.float32)
    if training:  # mix classes before the cache, so a bounded shuffle buffer suffices
        order = np.random.default_rng(config.seed).permutation(len(paths))
        paths, labels = paths[order], labels[order]
    decode = decoder(PreprocessConfig(size=config.image_size), transform)
    dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
    dataset = dataset.map(lambda p, y: (decode(p), y), num_parallel_calls=AUTOTUNE)
    if config.cache not in ("memory", "none"):
        raise ValueError(f"cache must be 'memory' or 'none', got {config.cache!r}")
    if config.cache == "memory":
        dataset = dataset.cache()
    if training:
        buffer = max(1, min(config.shuffle_buffer, len(paths)))
        dataset = dataset.shuffle(buffer, seed=config.seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(config.batch_size)
    dataset = dataset.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=AUTOTUNE)
    if training and augment is not None:
        dataset = dataset.map(lambda x, y: (augment(x), y), num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)


def class_weights(files: SplitFiles) -> dict[int, float]:
    """Balanced class weights of a split (see :func:`balanced_weights`)."""
    return balanced_weights(files.labels)


def balanced_weights(labels) -> dict[int, float]:
    """Balanced class weights ``n / (2 * n_class)`` (1.0 each for balanced data)."""
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=2)
    return {label: float(counts.sum() / (2.0 * count)) for label, count in enumerate(counts)}
