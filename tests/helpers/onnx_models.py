"""Tiny ONNX models that honour the serving contract, built with ``onnx.helper`` (no TensorFlow)
from the soak stand-in's graph pieces (:mod:`drills.soak.standin`).

Graph of :func:`build_tiny_model` for an input ``image`` ``[N, S, S, 3]`` float32 (0..255):

* ``cam`` ``[N, h, w]`` = ``scale * (block means of the channel-mean image - 127.5)``
  (``h = w = cam_size``; ``S`` must be a multiple of ``cam_size``);
* ``probability_fake`` ``[N, 1]`` = ``sigmoid(spatial mean of cam)``, i.e.
  ``sigmoid(scale * (mean(image) - 127.5))``: distinct images give distinct outputs and
  :func:`expected_probability` computes the exact answer in numpy.

``slow_matmuls > 0`` adds that many ``slow_dim x slow_dim`` MatMul + Tanh steps per model
run whose result is multiplied by zero: the outputs stay the same, each run gets slower
(a stand-in for a big model when testing queues, timeouts and shutdown).
:func:`slow_spec` times those steps on the machine at hand, so a test that needs requests to
overlap gets the same run time on a fast CI runner as on a slow laptop.
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from drills.soak.standin import cam_head, detector_model


@dataclass(frozen=True)
class TinyModelSpec:
    size: int = 32
    cam_size: int = 4
    scale: float = 0.05
    with_cam: bool = True
    slow_matmuls: int = 0
    slow_dim: int = 384


def build_tiny_model(spec: TinyModelSpec = TinyModelSpec()) -> onnx.ModelProto:
    """The ONNX graph described in the module docstring."""
    const, nodes = cam_head("grey", spec.size, spec.cam_size, centre=127.5, scale=spec.scale)
    logit = "logit"
    if spec.slow_matmuls:
        rng = np.random.default_rng(0)
        weight = rng.standard_normal((spec.slow_dim, spec.slow_dim)).astype(np.float32)
        const += [
            numpy_helper.from_array((weight / np.sqrt(spec.slow_dim)).astype(np.float32), "slow_w"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
            numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        ]
        nodes += [  # a runtime-dependent start so nothing can be constant-folded
            helper.make_node("ReduceMax", ["image"], ["peak"], keepdims=0),
            helper.make_node("Mul", ["peak", "zero"], ["peak_zero"]),
            helper.make_node("Add", ["peak_zero", "one"], ["unit"]),
            helper.make_node("Mul", ["slow_w", "unit"], ["slow_0"]),
        ]
        for step in range(spec.slow_matmuls):
            nodes += [
                helper.make_node("MatMul", [f"slow_{step}", "slow_w"], [f"slow_mm_{step}"]),
                helper.make_node("Tanh", [f"slow_mm_{step}"], [f"slow_{step + 1}"]),
            ]
        nodes += [
            helper.make_node("ReduceSum", [f"slow_{spec.slow_matmuls}"], ["slow_sum"], keepdims=0),
            helper.make_node("Mul", ["slow_sum", "zero"], ["slow_zero"]),
            helper.make_node("Add", ["logit", "slow_zero"], ["logit_slow"]),
        ]
        logit = "logit_slow"
    return detector_model(
        "tiny_deepfake_detector", spec.size, spec.cam_size, const, nodes,
        logit=logit, with_cam=spec.with_cam,
    )  # fmt: skip


@functools.cache
def slow_spec(seconds: float, size: int = TinyModelSpec.size, slow_dim: int = 384) -> TinyModelSpec:
    """A slow :class:`TinyModelSpec` whose one-image run takes about ``seconds`` on one thread
    of this machine: the MatMul steps are timed here, not guessed."""
    import onnxruntime as ort

    probe_steps = 8
    probe = build_tiny_model(TinyModelSpec(size=size, slow_matmuls=probe_steps, slow_dim=slow_dim))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(probe.SerializeToString(), options, ["CPUExecutionProvider"])
    feed = {"image": np.zeros((1, size, size, 3), np.float32)}
    session.run(None, feed)
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        session.run(None, feed)
        best = min(best, time.perf_counter() - started)
    steps = max(1, math.ceil(seconds * probe_steps / best))
    return TinyModelSpec(size=size, slow_matmuls=steps, slow_dim=slow_dim)


def slow_fields(seconds: float, size: int = TinyModelSpec.size, slow_dim: int = 384) -> dict:
    """:func:`slow_spec`'s two slow fields, for the ``model_entry_writer`` fixture."""
    spec = slow_spec(seconds, size, slow_dim)
    return {"slow_matmuls": spec.slow_matmuls, "slow_dim": spec.slow_dim}


def expected_probability(model_input: np.ndarray, scale: float = TinyModelSpec.scale) -> float:
    """What the tiny model outputs for one preprocessed ``S x S x 3`` input (float64 maths)."""
    logit = scale * (float(np.asarray(model_input, np.float64).mean()) - 127.5)
    return 1.0 / (1.0 + np.exp(-logit))


def write_model_entry(
    root: Path,
    name: str = "cnn",
    version: int = 1,
    spec: TinyModelSpec = TinyModelSpec(),
    threshold: float = 0.5,
    temperature: float = 1.0,
    *,
    face_crop: bool = False,
) -> Path:
    """Write ``root/name/version/{model.onnx, metadata.json}`` per docs/CONTRACTS.md; with
    ``face_crop`` the contract of a model trained on face crops (the server looks for faces,
    NO_FACE without one)."""
    from core.preprocessing import PreprocessConfig, contract

    folder = Path(root) / name / str(version)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(build_tiny_model(spec), folder / "model.onnx")
    outputs = [{"name": "probability_fake", "shape": [-1, 1], "dtype": "float32"}]
    if spec.with_cam:
        outputs.append(
            {"name": "cam", "shape": [-1, spec.cam_size, spec.cam_size], "dtype": "float32"}
        )
    metadata = {
        "name": name,
        "version": version,
        "format": "onnx",
        "files": {"onnx": "model.onnx"},
        "inputs": [{"name": "image", "shape": [-1, spec.size, spec.size, 3], "dtype": "float32"}],
        "outputs": outputs,
        "preprocessing": contract(PreprocessConfig(size=spec.size, face_crop=face_crop)),
        "class_names": ["REAL", "FAKE"],
        "positive_class": "FAKE",
        "threshold": threshold,
        "temperature": temperature,
        "metrics": {"test": {"accuracy": 0.0, "f1": 0.0, "roc_auc": 0.0}},
        "training_data": "none: a synthetic test model (sigmoid of the mean brightness)",
        "source": {"tiny_model_spec": asdict(spec)},
        "created": "2026-11-28T00:00:00Z",
    }
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=2))
    return folder


def add_int8_variant(folder: Path, measured: dict, *, serve: bool = True) -> Path:
    """Quantise ``folder/model.onnx`` as the export does (static INT8, calibrated on random
    images) into ``model.int8.onnx``; record ``measured`` as its ``parity.int8`` and, with
    ``serve``, name it the entry's ``serve_precision``."""
    from export.onnx_tools import to_int8

    metadata_path = Path(folder) / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    size = metadata["inputs"][0]["shape"][1]
    images = np.random.default_rng(0).uniform(0, 255, (16, size, size, 3)).astype(np.float32)
    to_int8(Path(folder) / "model.onnx", Path(folder) / "model.int8.onnx", images)
    metadata["files"]["onnx_int8"] = "model.int8.onnx"
    metadata.setdefault("parity", {})["int8"] = measured
    if serve:
        metadata["serve_precision"] = "int8"
    metadata_path.write_text(json.dumps(metadata, indent=2))
    return Path(folder) / "model.int8.onnx"
