"""Every model kind by name: the one place that knows all the builders (so that
``train.models`` and ``train.lite0`` need not import each other)."""

from __future__ import annotations

import keras

from train.lite0 import Lite0Config, build_detector
from train.models import build_cnn, build_xception
from train.texture_model import build_texture_model

KINDS = ("cnn", "xception", "lite0", "texture")


def build_model(kind: str, input_size: int = 224, weights: str | None = None) -> keras.Model:
    """Build ``cnn``, ``xception``, ``lite0`` or ``texture`` (224 px; ``weights``:
    lite0-imagenet | none)."""
    if kind == "cnn":
        return build_cnn(input_size)
    if kind == "xception":
        return build_xception(input_size, weights=weights)
    if kind == "lite0":
        return build_detector(Lite0Config(data="", out="", weights=weights or "none"))[0]
    if kind == "texture":
        return build_texture_model(weights or "none")
    raise ValueError(f"unknown model kind {kind!r}: use {', '.join(KINDS)}")
