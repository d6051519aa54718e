"""The texture detector's graph: a linear patch head on the ImageNet Lite0's early blocks.

Per 28x28 patch position it sees the outputs of blocks ``2b`` (56 px, pooled 2x2) and
``3b`` (28 px) and their squares (128 numbers; receptive field about 40 px of the 224 px
input); the ``features`` map is averaged over positions (``pool``: each channel's first and
second moment) and one ``Dense(1, sigmoid)`` ``classifier`` reads it. So the
class-activation map ``features @ W + b`` is exact, as for the other models
(:mod:`train.models`). Training is :mod:`train.texture`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from train.efficientnet_lite import pretrained_parts
from train.models import CLASSIFIER_LAYER, FEATURES_LAYER, INPUT_NAME

IMAGE_SIZE = 224
CUT = "block4a"  # the early part ends with block 3b
TEXTURE_BLOCKS = ("block2b_add", "block3b_add")


def build_texture_model(weights: str = "lite0-imagenet") -> keras.Model:
    """The detector graph (image in [0, 255] -> probability of FAKE); ``weights``:
    ``lite0-imagenet`` or ``none`` (random)."""
    lower, _ = pretrained_parts(CUT, weights, IMAGE_SIZE)
    early = keras.Model(
        lower.input, [lower.get_layer(name).output for name in TEXTURE_BLOCKS], name="lite0_early"
    )
    early.trainable = False
    image = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name=INPUT_NAME, dtype="float32")
    fine, coarse = early(image)
    squared_fine = layers.Multiply(name="fine_squared")([fine, fine])
    maps = [
        layers.AveragePooling2D(2, name="fine_pool")(fine),
        layers.AveragePooling2D(2, name="fine_squared_pool")(squared_fine),
        coarse,
        layers.Multiply(name="coarse_squared")([coarse, coarse]),
    ]
    x = layers.Concatenate(name="texture")(maps)
    x = layers.Activation("linear", name=FEATURES_LAYER)(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    output = layers.Dense(1, activation="sigmoid", name=CLASSIFIER_LAYER)(x)
    return keras.Model(image, output, name="texture")


def pooled_extractor():
    """``N x 224 x 224 x 3`` images -> the model's ``pool`` vectors (``N x 128``)."""
    model = build_texture_model()
    pooled = keras.Model(model.input, model.get_layer("pool").output)
    return lambda batch: np.asarray(pooled.predict_on_batch(batch))
