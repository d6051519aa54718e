"""The stand-in model served when the repository has no servable one (no TensorFlow)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

STANDIN_SIZE, STANDIN_CAM = 64, 8
STANDIN_NAME = "standin"


def write_standin_model(root: Path, name: str = STANDIN_NAME) -> Path:
    """A tiny contract-conforming model (no TensorFlow, no weights to download):
    ``probability_fake = sigmoid(0.05 * (mean brightness - 127.5))`` with an 8x8 ``cam``."""
    import onnx

    from core.preprocessing import PreprocessConfig, contract

    size, cam = STANDIN_SIZE, STANDIN_CAM
    folder = root / name / "1"
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(standin_model(), folder / "model.onnx")
    metadata = {
        "name": name,
        "version": 1,
        "format": "onnx",
        "files": {"onnx": "model.onnx"},
        "inputs": [{"name": "image", "shape": [-1, size, size, 3], "dtype": "float32"}],
        "outputs": [
            {"name": "probability_fake", "shape": [-1, 1], "dtype": "float32"},
            {"name": "cam", "shape": [-1, cam, cam], "dtype": "float32"},
        ],
        "preprocessing": contract(PreprocessConfig(size=size)),
        "class_names": ["REAL", "FAKE"],
        "positive_class": "FAKE",
        "threshold": 0.5,
        "temperature": 1.0,
        "metrics": {},
        "training_data": "none: soak stand-in (sigmoid of the mean brightness)",
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=2))
    return root


def standin_model():
    """The stand-in's ONNX graph: brightness pooled into the CAM, its mean through a sigmoid."""
    from onnx import TensorProto, helper, numpy_helper

    size, cam, block = STANDIN_SIZE, STANDIN_CAM, STANDIN_SIZE // STANDIN_CAM
    constants = [
        numpy_helper.from_array(np.array(127.5, np.float32), "centre"),
        numpy_helper.from_array(np.array(0.05, np.float32), "scale"),
        numpy_helper.from_array(np.array([-1, cam, cam], np.int64), "cam_shape"),
        numpy_helper.from_array(np.array([1], np.int64), "axis_one"),
    ]
    node = helper.make_node
    nodes = [
        node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
        node("ReduceMean", ["nchw"], ["grey"], axes=[1], keepdims=1),
        node("AveragePool", ["grey"], ["pooled"], kernel_shape=[block] * 2, strides=[block] * 2),
        node("Sub", ["pooled", "centre"], ["centred"]),
        node("Mul", ["centred", "scale"], ["cam_4d"]),
        node("Reshape", ["cam_4d", "cam_shape"], ["cam"]),
        node("ReduceMean", ["cam"], ["logit"], axes=[1, 2], keepdims=0),
        node("Unsqueeze", ["logit", "axis_one"], ["logit_2d"]),
        node("Sigmoid", ["logit_2d"], ["probability_fake"]),
    ]
    graph = helper.make_graph(
        nodes,
        "soak_standin",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", size, size, 3])],
        [
            helper.make_tensor_value_info("probability_fake", TensorProto.FLOAT, ["N", 1]),
            helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["N", cam, cam]),
        ],
        initializer=constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model
