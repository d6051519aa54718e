"""The two Keras models: a small custom CNN and Xception transfer learning.

Both share one graph contract, relied on by export and by the class-activation map:

* input ``image``: ``float32`` NHWC RGB in ``[0, 255]`` (see ``core.preprocessing``);
  normalisation is the first layer of the graph;
* layer ``features``: the last convolutional feature map (after its activation);
* layer ``pool``: global average pooling of ``features``;
* layer ``classifier``: ``Dense(1, sigmoid)`` = probability of FAKE.

Because the head is GAP -> (Dropout) -> Dense, the class-activation map
``cam[h, w] = features[h, w, :] @ W + b`` is exact: its mean is the logit.
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from train.config import DEFAULT_CNN_FILTERS

INPUT_NAME = "image"
FEATURES_LAYER = "features"
CLASSIFIER_LAYER = "classifier"
XCEPTION_FINE_TUNE_BLOCKS = ("block13", "block14")


def build_cnn(
    input_size: int = 224,
    filters: tuple[int, ...] = DEFAULT_CNN_FILTERS,
    convs_per_block: int = 1,
    dropout: float = 0.3,
) -> keras.Model:
    """Custom CNN: blocks of [Conv-BN-ReLU] x n, MaxPool, Dropout; then GAP, Dropout, Dense.

    The default (five blocks, 16..256 filters) costs about 0.25 GMAC per 224x224 image,
    so it trains on a CPU; its ``features`` map is 14x14 at 224 input.
    """
    inputs = keras.Input((input_size, input_size, 3), name=INPUT_NAME)
    x = layers.Rescaling(1.0 / 255.0, name="normalise")(inputs)
    for index, width in enumerate(filters):
        last_block = index == len(filters) - 1
        for step in range(convs_per_block):
            last_conv = last_block and step == convs_per_block - 1
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv{index}_{step}")(
                x
            )
            x = layers.BatchNormalization(name=f"bn{index}_{step}")(x)
            x = layers.ReLU(name=FEATURES_LAYER if last_conv else f"relu{index}_{step}")(x)
        if not last_block:
            x = layers.MaxPooling2D(2, name=f"maxpool{index}")(x)
            x = layers.Dropout(dropout / 3, name=f"drop{index}")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(1, activation="sigmoid", name=CLASSIFIER_LAYER)(x)
    return keras.Model(inputs, outputs, name="cnn")


def resolve_weights(weights: str | None) -> str | None:
    """``imagenet`` | a path to an ``.h5``/``.weights.h5`` file | ``none`` -> Keras argument."""
    if weights is None or str(weights).lower() == "none":
        return None
    if str(weights).lower() == "imagenet":
        return "imagenet"
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"Xception weights file not found: {path}")
    return str(path)


def build_xception(
    input_size: int = 224,
    weights: str | None = "imagenet",
    dropout: float = 0.3,
) -> keras.Model:
    """Xception base (``include_top=False``) + GAP + Dropout + Dense(sigmoid).

    With pretrained weights the base starts frozen (BatchNorm in inference mode) and
    :func:`unfreeze_top` opens its last blocks for fine-tuning. Without weights (``none``)
    a frozen random base would learn nothing, so the whole network trains from scratch.
    """
    pretrained = resolve_weights(weights)
    base = keras.applications.Xception(
        include_top=False,
        weights=pretrained,
        input_shape=(input_size, input_size, 3),
    )
    base.trainable = pretrained is None
    inputs = keras.Input((input_size, input_size, 3), name=INPUT_NAME)
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalise")(inputs)
    x = base(x, training=False) if pretrained is not None else base(x)
    x = layers.Activation("linear", name=FEATURES_LAYER)(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(1, activation="sigmoid", name=CLASSIFIER_LAYER)(x)
    return keras.Model(inputs, outputs, name="xception")


def unfreeze_top(model: keras.Model, prefixes: tuple[str, ...] = XCEPTION_FINE_TUNE_BLOCKS) -> int:
    """Make the Xception base's layers whose names start with ``prefixes`` trainable.

    BatchNormalization layers stay frozen (standard fine-tuning practice). Returns the
    number of layers unfrozen.
    """
    base = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    base.trainable = True
    opened = 0
    for layer in base.layers:
        trainable = layer.name.startswith(prefixes) and not isinstance(
            layer, layers.BatchNormalization
        )
        layer.trainable = trainable
        opened += int(trainable)
    return opened
