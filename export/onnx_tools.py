"""ONNX-side steps of the export, free of TensorFlow: check, optimise, FP16, INT8, run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from .config import ExportError

CPU = ["CPUExecutionProvider"]
LEVELS = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def check_model(path: Path) -> None:
    """Run ``onnx.checker`` (full check, with shape inference) on a saved model."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"ONNX checker rejected {path.name}: {exc}") from None


def optimize(source: Path, destination: Path, level: str = "extended") -> None:
    """Save ONNX Runtime's graph-optimised version of ``source`` as ``destination``.

    ``extended`` fuses into ``com.microsoft`` operators that the CPU and CUDA providers
    run but other runtimes (TensorRT's parser) do not, which is why the export also keeps
    the standard-operator graph. ``all`` adds CPU-layout (NCHWc) transforms that tie the
    file to this CPU family.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = LEVELS[level]
    options.optimized_model_filepath = str(destination)
    options.log_severity_level = 3
    ort.InferenceSession(str(source), options, providers=CPU)
    if not destination.is_file():
        raise ExportError(f"ONNX Runtime did not write the optimised model {destination}")


def plain_cpu_session(path: Path) -> ort.InferenceSession:
    """Load ``path`` on the CPU provider with no further optimisation (proves portability)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=CPU)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ExportError(f"{path.name} does not load on the plain CPU provider: {exc}") from None


def run_batches(
    session: ort.InferenceSession, images: np.ndarray, batch_size: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Run ``images`` through ``session`` ``batch_size`` at a time; (probability, cam|None)."""
    names = [output.name for output in session.get_outputs()]
    input_name = session.get_inputs()[0].name
    probabilities, cams = [], []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        outputs = dict(zip(names, session.run(None, {input_name: batch}), strict=True))
        probabilities.append(outputs["probability_fake"])
        if "cam" in outputs:
            cams.append(outputs["cam"])
    return np.concatenate(probabilities), (np.concatenate(cams) if cams else None)


def topological_sort(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` so every node comes after the producers of its inputs."""
    known = {value.name for value in graph.input} | {init.name for init in graph.initializer}
    known.add("")  # optional inputs left empty
    pending, ordered = list(graph.node), []
    while pending:
        ready = [node for node in pending if all(name in known for name in node.input)]
        if not ready:
            raise ExportError("ONNX graph has a cycle or an input nobody produces")
        for node in ready:
            ordered.append(node)
            known.update(node.output)
        ready_ids = {id(node) for node in ready}
        pending = [node for node in pending if id(node) not in ready_ids]
    copies = [onnx.NodeProto.FromString(node.SerializeToString()) for node in ordered]
    del graph.node[:]
    graph.node.extend(copies)


def to_fp16(source: Path, destination: Path) -> None:
    """FP16 weights and activations, FP32 inputs/outputs (Cast nodes at the edges).

    Uses the converter that ships with onnxruntime (``onnxruntime.transformers.float16``,
    the same code as onnxconverter-common), so no extra package is needed.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    topological_sort(model.graph)  # the converter appends the input Casts at the end
    onnx.save(model, str(destination))
    check_model(destination)


def to_int8(
    source: Path,
    destination: Path,
    images: np.ndarray,
    *,
    for_tensorrt: bool = False,
    batch_size: int = 8,
) -> None:
    """Static INT8 in QDQ form: per-channel int8 weights, activation scales fixed by
    calibration on ``images`` (model inputs, preprocessed as the contract says).

    For onnxruntime's CPU provider (the default): uint8 activations with zero points and
    MinMax scales, the U8S8 form its x86 integer kernels (VNNI, AMX) run. For TensorRT >= 11
    (``for_tensorrt``): int8 activations, symmetric (zero point 0, the only form its explicit
    quantization accepts), entropy-calibrated scales.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            starts = range(0, len(images), batch_size)
            self.batches = iter([{"image": images[i : i + batch_size]} for i in starts])

        def get_next(self) -> dict | None:
            return next(self.batches, None)

    symmetric = {"ActivationSymmetric": True, "WeightSymmetric": True}
    prepared = destination.with_name(f".{destination.name}.prepared")
    try:  # the recommended pre-processing: ONNX shape inference + graph clean-up
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(destination),
            Batches(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8 if for_tensorrt else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=(
                CalibrationMethod.Entropy if for_tensorrt else CalibrationMethod.MinMax
            ),
            extra_options=symmetric if for_tensorrt else {},
        )
    finally:
        prepared.unlink(missing_ok=True)
    check_model(destination)
