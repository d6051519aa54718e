"""The Keras side: load the trained model, add the CAM output, convert with tf2onnx.

This is the only export module that imports TensorFlow / Keras.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import onnx  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers, ops  # noqa: E402

from .config import ExportError  # noqa: E402

FEATURES_LAYER = "features"  # names fixed by docs/CONTRACTS.md and train/models.py
CLASSIFIER_LAYER = "classifier"
INPUT_NAME = "image"
PROBABILITY_OUTPUT = "probability_fake"
CAM_OUTPUT = "cam"
BATCH_DIM = "N"
CATCH_ERRORS_ENV = "TF2ONNX_CATCH_ERRORS"


class ClassActivationMap(layers.Layer):
    """``cam[n, h, w] = features[n, h, w, :] @ W[:, 0] + b[0]`` with the classifier's own weights.

    With a GAP -> (Dropout) -> Dense head the spatial mean of this map is exactly the logit.
    """

    def __init__(self, classifier: layers.Dense, **kwargs) -> None:
        super().__init__(**kwargs)
        self.classifier = classifier

    def call(self, features):
        kernel = self.classifier.kernel[:, 0]
        return ops.einsum("nhwc,c->nhw", features, kernel) + self.classifier.bias[0]


def load_keras_model(path: Path) -> keras.Model:
    """``keras.saving.load_model`` with a readable error."""
    try:
        return keras.saving.load_model(str(path), compile=False)
    except Exception as exc:  # Keras raises many types for bad files
        raise ExportError(f"cannot load Keras model {path}: {exc}") from None


def input_size_of(model: keras.Model) -> int:
    """The square input size, checking the ``(N, s, s, 3)`` contract."""
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[3] != 3 or shape[1] != shape[2] or shape[1] is None:
        raise ExportError(f"model input must be (N, s, s, 3) with a fixed s, got {shape}")
    return int(shape[1])


def build_export_model(model: keras.Model) -> keras.Model:
    """A two-output model: ``[probability (N, 1), cam (N, h, w)]`` sharing one forward pass."""
    names = {layer.name for layer in model.layers}
    missing = [name for name in (FEATURES_LAYER, CLASSIFIER_LAYER) if name not in names]
    if missing:
        raise ExportError(
            f"model {model.name!r} has no layer named {', '.join(missing)}: "
            "export needs the graph contract of train/models.py"
        )
    classifier = model.get_layer(CLASSIFIER_LAYER)
    activation = getattr(getattr(classifier, "activation", None), "__name__", "")
    if not isinstance(classifier, layers.Dense) or classifier.units != 1 or activation != "sigmoid":
        raise ExportError("layer 'classifier' must be Dense(1, activation='sigmoid')")
    features = model.get_layer(FEATURES_LAYER).output
    if len(features.shape) != 4:
        raise ExportError(f"layer 'features' must output (N, h, w, c), got {features.shape}")
    cam = ClassActivationMap(classifier, name=CAM_OUTPUT)(features)
    return keras.Model(model.inputs, [model.outputs[0], cam], name=f"{model.name}_export")


def keras_outputs(
    model: keras.Model, images: np.ndarray, batch_size: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Inference-mode outputs of the export model (probability, cam) as float32 numpy."""
    probabilities, cams = [], []
    for start in range(0, len(images), batch_size):
        probability, cam = model([images[start : start + batch_size]], training=False)
        probabilities.append(np.asarray(probability, dtype=np.float32))
        cams.append(np.asarray(cam, dtype=np.float32))
    return np.concatenate(probabilities), np.concatenate(cams)


def _rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in list(graph.output) + list(graph.value_info):
        if value.name == old:
            value.name = new


def _name_batch_axis(value: onnx.ValueInfoProto) -> None:
    dim = value.type.tensor_type.shape.dim[0]
    dim.ClearField("dim_value")
    dim.dim_param = BATCH_DIM


def _from_keras(model: keras.Model, signature: tuple, opset: int, fast: bool) -> onnx.ModelProto:
    """``tf2onnx.convert.from_keras``; ``fast`` runs its graph optimisers in place.

    By default tf2onnx deep-copies the whole graph (weights included) before each optimiser
    pass so that a failing pass can be skipped; for Xception that is most of the conversion
    time. Setting ``TF2ONNX_CATCH_ERRORS`` (any value) turns the copies off; the same
    optimisers run, and if one fails the caller retries with the default.
    """
    import tf2onnx

    tf2onnx.logging.set_level(logging.ERROR)
    previous = os.environ.pop(CATCH_ERRORS_ENV, None)
    if fast:
        os.environ[CATCH_ERRORS_ENV] = "FALSE"
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset)
        return proto
    finally:
        os.environ.pop(CATCH_ERRORS_ENV, None)
        if previous is not None:
            os.environ[CATCH_ERRORS_ENV] = previous


def to_onnx(export_model: keras.Model, input_size: int, opset: int) -> onnx.ModelProto:
    """tf2onnx conversion with input ``image`` [N,s,s,3] and outputs named per the contract."""
    signature = (tf.TensorSpec((None, input_size, input_size, 3), tf.float32, name=INPUT_NAME),)
    try:
        proto = _from_keras(export_model, signature, opset, fast=True)
    except Exception:  # an optimiser failed in place: redo with tf2onnx's guarded default
        try:
            proto = _from_keras(export_model, signature, opset, fast=False)
        except Exception as exc:  # tf2onnx raises many types
            raise ExportError(f"tf2onnx could not convert the model: {exc}") from None
    graph = proto.graph
    if [value.name for value in graph.input] != [INPUT_NAME]:
        raise ExportError(f"unexpected ONNX inputs {[v.name for v in graph.input]}")
    ranks = {value.name: len(value.type.tensor_type.shape.dim) for value in graph.output}
    by_rank = {rank: name for name, rank in ranks.items()}
    if sorted(ranks.values()) != [2, 3]:
        raise ExportError(f"unexpected ONNX outputs {ranks} (want one rank-2 and one rank-3)")
    _rename(graph, by_rank[2], PROBABILITY_OUTPUT)
    _rename(graph, by_rank[3], CAM_OUTPUT)
    for value in list(graph.input) + list(graph.output):
        _name_batch_axis(value)
    proto.doc_string = "deepfake detector: probability_fake + class-activation map"
    return proto


def tool_versions() -> dict:
    """Versions of the converter stack, for the metadata."""
    import tf2onnx

    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tf2onnx": tf2onnx.__version__,
    }
