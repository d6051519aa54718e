"""The stand-in model served when the repository has no servable one (no TensorFlow), and
the two graph pieces it is made of (:func:`cam_head`, :func:`detector_model`), on which the
tests' tiny models are built too."""

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
    constants, nodes = cam_head("grey", STANDIN_SIZE, STANDIN_CAM, centre=127.5, scale=0.05)
    return detector_model("soak_standin", STANDIN_SIZE, STANDIN_CAM, constants, nodes)


def cam_head(source: str, size: int, cam: int, centre: float, scale: float) -> tuple[list, list]:
    """Constants and nodes from ``source`` ``[N, 1, size, size]`` to the ``cam`` output
    (``scale * (block mean - centre)``, ``cam x cam``) and ``logit`` ``[N, 1]``, its mean.
    The stand-in and the tests' tiny models share this head."""
    from onnx import helper, numpy_helper

    if size % cam:
        raise ValueError("size must be a multiple of cam")
    block = size // cam
    constants = [
        numpy_helper.from_array(np.array(centre, np.float32), "centre"),
        numpy_helper.from_array(np.array(scale, np.float32), "scale"),
        numpy_helper.from_array(np.array([-1, cam, cam], np.int64), "cam_shape"),
        numpy_helper.from_array(np.array([1], np.int64), "axis_one"),
    ]
    node = helper.make_node
    nodes = [
        node("AveragePool", [source], ["pooled"], kernel_shape=[block] * 2, strides=[block] * 2),
        node("Sub", ["pooled", "centre"], ["centred"]),
        node("Mul", ["centred", "scale"], ["cam_4d"]),
        node("Reshape", ["cam_4d", "cam_shape"], ["cam"]),
        node("ReduceMean", ["cam"], ["logit_flat"], axes=[1, 2], keepdims=0),
        node("Unsqueeze", ["logit_flat", "axis_one"], ["logit"]),
    ]
    return constants, nodes


def detector_model(
    name: str, size: int, cam: int, constants: list, nodes: list, *,
    logit: str = "logit", with_cam: bool = True,
):  # fmt: skip
    """A checked model of the serving contract: ``image`` ``[N, size, size, 3]`` made ``grey``
    (channel mean, ``[N, 1, size, size]``), then ``nodes``, then ``probability_fake =
    sigmoid(logit)``; with ``with_cam`` the ``cam`` output too."""
    import onnx
    from onnx import TensorProto, helper

    grey = [
        helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("ReduceMean", ["nchw"], ["grey"], axes=[1], keepdims=1),
    ]
    sigmoid = helper.make_node("Sigmoid", [logit], ["probability_fake"])
    outputs = [helper.make_tensor_value_info("probability_fake", TensorProto.FLOAT, ["N", 1])]
    if with_cam:
        outputs.append(helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["N", cam, cam]))
    graph = helper.make_graph(
        [*grey, *nodes, sigmoid],
        name,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", size, size, 3])],
        outputs,
        initializer=constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
