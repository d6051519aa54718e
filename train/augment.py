"""Training-time augmentation, applied to batches inside the tf.data train pipeline only.

Geometric: random horizontal flip, rotation, zoom and translation (Keras preprocessing
layers, reflect fill). Degradations, each applied to a random share of the images: JPEG
re-compression at a random quality and Gaussian blur with a random sigma. Inputs and
outputs are ``float32`` images in ``[0, 255]``; every step can be turned off.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
import tensorflow as tf
from keras import layers

from train.config import AugmentConfig


def geometric_layers(config: AugmentConfig, seed: int) -> keras.Sequential | None:
    """The Keras random geometric layers that ``config`` asks for (``None`` if none)."""
    stack: list[layers.Layer] = []
    if config.flip:
        stack.append(layers.RandomFlip("horizontal", seed=seed, name="flip"))
    if config.rotation > 0:
        stack.append(
            layers.RandomRotation(config.rotation, fill_mode="reflect", seed=seed + 1, name="rot")
        )
    if config.zoom > 0:
        stack.append(layers.RandomZoom(config.zoom, fill_mode="reflect", seed=seed + 2))
    if config.translation > 0:
        stack.append(
            layers.RandomTranslation(
                config.translation, config.translation, fill_mode="reflect", seed=seed + 3
            )
        )
    return keras.Sequential(stack, name="geometric") if stack else None


def random_jpeg(image: tf.Tensor, quality: tuple[int, int], seed: int) -> tf.Tensor:
    """Re-encode one ``[0, 255]`` float image as JPEG at a random quality in ``quality``."""
    pixels = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
    low, high = int(quality[0]), int(quality[1])
    if high <= low:
        compressed = tf.image.adjust_jpeg_quality(pixels, low)
    else:
        compressed = tf.image.random_jpeg_quality(pixels, low, high + 1, seed=seed)
    return tf.ensure_shape(tf.cast(compressed, tf.float32), image.shape)


def gaussian_blur(image: tf.Tensor, sigma: tf.Tensor, radius: int) -> tf.Tensor:
    """Separable Gaussian blur of one HxWxC image (reflect padding); ``radius`` is static."""
    offsets = tf.range(-radius, radius + 1, dtype=tf.float32)
    weights = tf.exp(-0.5 * tf.square(offsets / tf.maximum(sigma, 1e-3)))
    weights = weights / tf.reduce_sum(weights)
    channels = image.shape[-1]
    row = tf.tile(tf.reshape(weights, (1, -1, 1, 1)), (1, 1, channels, 1))
    column = tf.reshape(row, (-1, 1, channels, 1))
    padded = tf.pad(image[None], [[0, 0], [radius, radius], [radius, radius], [0, 0]], "REFLECT")
    blurred = tf.nn.depthwise_conv2d(padded, row, [1, 1, 1, 1], "VALID")
    blurred = tf.nn.depthwise_conv2d(blurred, column, [1, 1, 1, 1], "VALID")
    return blurred[0]


def degrade(image: tf.Tensor, config: AugmentConfig, seed: int) -> tf.Tensor:
    """Randomly JPEG-compress and/or blur one image, as ``config`` says."""
    if config.jpeg_quality and config.jpeg_probability > 0:
        apply = tf.random.uniform((), seed=seed) < config.jpeg_probability
        image = tf.cond(
            apply, lambda: random_jpeg(image, config.jpeg_quality, seed + 1), lambda: image
        )
    if config.blur_sigma and config.blur_probability > 0:
        low, high = config.blur_sigma
        smallest_side = min(int(image.shape[0]), int(image.shape[1]))
        radius = max(1, min(math.ceil(3 * high), smallest_side - 1))
        sigma = tf.random.uniform((), low, high, seed=seed + 2)
        apply = tf.random.uniform((), seed=seed + 3) < config.blur_probability
        image = tf.cond(apply, lambda: gaussian_blur(image, sigma, radius), lambda: image)
    return image


def build_augmenter(config: AugmentConfig, seed: int = 0) -> Callable[[tf.Tensor], tf.Tensor]:
    """A function ``batch -> augmented batch`` (NHWC float32, values kept in ``[0, 255]``)."""
    geometric = geometric_layers(config, seed)
    degrades = bool(
        (config.jpeg_quality and config.jpeg_probability > 0)
        or (config.blur_sigma and config.blur_probability > 0)
    )

    def augment(images: tf.Tensor) -> tf.Tensor:
        shape = images.shape
        if geometric is not None:
            images = tf.ensure_shape(geometric(images, training=True), shape)
        if degrades:
            images = tf.map_fn(
                lambda image: degrade(image, config, seed + 10),
                images,
                fn_output_signature=tf.TensorSpec(images.shape[1:], tf.float32),
            )
        return tf.clip_by_value(images, 0.0, 255.0)

    return augment
