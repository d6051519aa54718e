"""``python -m export.tensorrt``: build a TensorRT engine ``model.plan`` for a repository entry.

Backends, tried in order:

1. the TensorRT Python API (``pip install 'deepfake-detect[gpu]'`` on a machine with an
   NVIDIA GPU): parse the standard-operator ONNX graph, one optimisation profile for batch
   ``1..--max-batch``, optional FP16 and INT8 (entropy calibration on images from
   ``--calib-dir`` sent through ``core.preprocessing``), serialise, deserialise to check;
2. ``trtexec`` on ``PATH`` (FP32 / FP16 only: INT8 calibration needs the Python API).

TensorRT versions: 10.x takes FP16 and INT8 as builder flags. 11.x removed both flags and
implicit INT8 calibration (networks are strongly typed): FP16 then builds from the entry's
``model.fp16.onnx`` (export with ``--fp16``), and INT8 from ``model.qdq.onnx``, written here
by ONNX Runtime's static quantisation (explicit symmetric Q/DQ pairs, entropy-calibrated
on the same ``--calib-dir`` images).

Device buffers for the INT8 calibrator come from ``cuda-python`` if installed, else PyTorch.
Without TensorRT (or without a GPU) the command explains why and exits with status 2.
The plan is recorded in ``metadata.json`` (``files.plan`` and a ``tensorrt`` section).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx

from core.modelrepo import (
    InvalidMetadata,
    InvalidModelName,
    ModelEntry,
    ModelNotFound,
    ModelRepository,
)
from core.options import option, options_parser, parse_bool, parse_optional_path

from .config import ExportError, run_export_command
from .metadata import FILES
from .onnx_tools import to_int8
from .repository import update_metadata

EXIT_UNAVAILABLE = 2
INPUT_NAME = "image"
STANDARD_DOMAINS = {"", "ai.onnx"}


class TensorRTUnavailable(ExportError):
    """No usable TensorRT (package, GPU or feature) on this machine."""

    exit_code = EXIT_UNAVAILABLE


@dataclass(frozen=True)
class TensorRTConfig:
    """What to build, for which entry."""

    name: str = option(help="model name, e.g. texture")
    repo: Path = option(Path("models"), "repository root", Path, metavar="DIR")
    version: int | None = option(None, "version (default: the latest)", int)
    fp16: bool = option(False, "allow FP16 kernels", parse_bool)
    int8: bool = option(False, "INT8 with entropy calibration", parse_bool)
    calib_dir: Path | None = option(
        None, "calibration images (for --int8)", parse_optional_path, metavar="DIR"
    )
    calib_count: int = option(256, "calibration images used", int)
    calib_batch: int = option(8, "calibration batch size", int)
    max_batch: int = option(64, "largest batch of the profile", int)
    opt_batch: int = option(8, "batch TensorRT tunes for", int)
    workspace_gib: float = option(4.0, "builder workspace", float, metavar="GIB")
    backend: str = option("auto", "builder", choices=("auto", "python", "trtexec"))

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.opt_batch < 1:
            raise ValueError("--max-batch and --opt-batch must be >= 1")
        if self.int8 and self.calib_dir is None:
            raise ValueError("--int8 needs --calib-dir: a folder of calibration images")
        if self.int8 and (self.calib_batch < 1 or self.calib_count < self.calib_batch):
            raise ValueError("--calib-count must be >= --calib-batch >= 1")
        if self.backend not in ("auto", "python", "trtexec"):
            raise ValueError("--backend must be auto, python or trtexec")


def import_tensorrt():
    """The ``tensorrt`` module, or :class:`TensorRTUnavailable` saying why not."""
    try:
        import tensorrt

        return tensorrt
    except Exception as exc:  # ImportError, or a CUDA library that fails to load
        raise TensorRTUnavailable(
            f"the TensorRT Python package cannot be imported ({type(exc).__name__}: {exc})"
        ) from None


def choose_backend(requested: str) -> str:
    """``python`` or ``trtexec``; :class:`TensorRTUnavailable` with the full story if neither."""
    reasons = []
    if requested in ("auto", "python"):
        try:
            import_tensorrt()
            return "python"
        except TensorRTUnavailable as exc:
            reasons.append(str(exc))
    if requested in ("auto", "trtexec"):
        if shutil.which("trtexec"):
            return "trtexec"
        reasons.append("no 'trtexec' on PATH")
    raise TensorRTUnavailable(
        "TensorRT is not available on this machine: "
        + "; ".join(reasons)
        + ". TensorRT engines need an NVIDIA GPU with CUDA and TensorRT "
        "(pip install 'deepfake-detect[gpu]'). The ONNX model serves without it "
        "(ONNX Runtime on CPU or CUDA)."
    )


def onnx_source(entry: ModelEntry, config: TensorRTConfig, fp16_by_flag: bool) -> Path:
    """The ONNX file TensorRT should parse: standard operators only."""
    files = entry.metadata.get("files", {})
    if config.fp16 and not fp16_by_flag:
        if "onnx_fp16" not in files:
            raise ExportError(
                "this TensorRT has no FP16 builder flag (strongly typed networks): export the "
                "model with --fp16 so that model.fp16.onnx exists, then rerun"
            )
        path = entry.path / files["onnx_fp16"]
    else:
        path = entry.path / files.get("onnx_portable", files.get("onnx", FILES["onnx"]))
    model = onnx.load(str(path), load_external_data=False)
    foreign = sorted({node.domain for node in model.graph.node} - STANDARD_DOMAINS)
    if foreign:
        raise ExportError(
            f"{path.name} uses non-standard operator domains {foreign} (onnxruntime fusions) "
            "that TensorRT cannot parse; re-export to get model.portable.onnx"
        )
    return path


def calibration_images(config: TensorRTConfig, entry: ModelEntry) -> np.ndarray:
    """Calibration inputs from ``--calib-dir`` through the entry's preprocessing contract."""
    from .parity import folder_images

    folder = Path(config.calib_dir)
    images = folder_images(folder, config.calib_count, entry.preprocess_config()).images
    if len(images) < config.calib_batch:
        raise ExportError(
            f"--calib-dir has {len(images)} readable images, fewer than --calib-batch "
            f"{config.calib_batch}"
        )
    return images


class DeviceBuffer:
    """One GPU allocation filled from host numpy arrays (cuda-python, else PyTorch)."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes
        self._free = None
        try:
            try:
                from cuda.bindings import runtime as cudart
            except ImportError:
                from cuda import cudart
            error, pointer = cudart.cudaMalloc(nbytes)
            if int(error) != 0:
                raise TensorRTUnavailable(f"cudaMalloc of {nbytes} bytes failed: {error}")
            self.pointer = int(pointer)
            self._copy = lambda host: cudart.cudaMemcpy(
                self.pointer,
                host.ctypes.data,
                host.nbytes,
                cudart.cudaMemcpyKind.cudaMemcpyHostToDevice,
            )
            self._free = lambda: cudart.cudaFree(self.pointer)
            return
        except ImportError:
            pass
        try:
            import torch
        except ImportError:
            raise TensorRTUnavailable(
                "INT8 calibration needs GPU buffers: install cuda-python (or PyTorch with CUDA)"
            ) from None
        self._tensor = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
        self.pointer = int(self._tensor.data_ptr())

        def copy(host: np.ndarray) -> None:
            self._tensor[: host.nbytes].copy_(torch.from_numpy(host.view(np.uint8).ravel()))
            torch.cuda.synchronize()

        self._copy = copy

    def upload(self, host: np.ndarray) -> None:
        host = np.ascontiguousarray(host)
        if host.nbytes > self.nbytes:
            raise ValueError("batch larger than the device buffer")
        result = self._copy(host)
        if isinstance(result, tuple) and int(result[0]) != 0:
            raise RuntimeError(f"cudaMemcpy failed: {result[0]}")

    def close(self) -> None:
        if self._free is not None:
            self._free()
            self._free = None


def make_calibrator(trt, images: np.ndarray, batch_size: int, cache: Path):
    """An ``IInt8EntropyCalibrator2`` that feeds full batches of ``images``."""
    if not hasattr(trt, "IInt8EntropyCalibrator2"):
        raise TensorRTUnavailable(
            f"TensorRT {trt.__version__} removed implicit INT8 calibration "
            "(IInt8EntropyCalibrator2); build INT8 engines with TensorRT 10.x"
        )

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            usable = len(images) // batch_size * batch_size
            self.batches = [images[i : i + batch_size] for i in range(0, usable, batch_size)]
            self.buffer = DeviceBuffer(images[:batch_size].nbytes)
            self.index = 0

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names):  # TensorRT passes the input names; one input here
            if self.index >= len(self.batches):
                return None
            self.buffer.upload(self.batches[self.index].astype(np.float32))
            self.index += 1
            return [self.buffer.pointer]

        def read_calibration_cache(self):
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data) -> None:
            cache.write_bytes(bytes(data))

    return EntropyCalibrator()


def build_with_python(
    entry: ModelEntry, config: TensorRTConfig, plan: Path, size: int
) -> tuple[dict, int, bytes]:
    """Build and serialise the engine with the TensorRT Python API; (facts, size, bytes)."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    try:
        builder = trt.Builder(logger)
    except Exception as exc:  # no GPU / driver: TensorRT cannot create a builder
        raise TensorRTUnavailable(
            f"TensorRT cannot create a builder (no CUDA GPU or driver?): {exc}"
        ) from None
    fp16_by_flag = hasattr(trt.BuilderFlag, "FP16")
    int8_by_flag = hasattr(trt.BuilderFlag, "INT8") and hasattr(trt, "IInt8EntropyCalibrator2")
    source = onnx_source(entry, config, fp16_by_flag)
    images = calibration_images(config, entry) if config.int8 else None
    if not (config.int8 and not int8_by_flag):
        return _build_engine(trt, builder, logger, source, config, size, plan, images)
    # TensorRT >= 11: explicit quantization only; the Q/DQ model is kept if the build works
    qdq = entry.path / FILES["onnx_qdq"]
    staging = qdq.with_name(f".{qdq.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        source = onnx_source(entry, config, True)
        to_int8(source, staging, images, for_tensorrt=True, batch_size=config.calib_batch)
        result = _build_engine(trt, builder, logger, staging, config, size, plan, images)
        os.replace(staging, qdq)
    finally:
        staging.unlink(missing_ok=True)
    result[0]["source_onnx"] = qdq.name
    return result


def _build_engine(
    trt, builder, logger, source: Path, config: TensorRTConfig, size: int, plan: Path, images
) -> tuple[dict, int, bytes]:
    """Parse ``source``, set the profile and precision, build, deserialise to check."""
    int8_by_flag = hasattr(trt.BuilderFlag, "INT8") and hasattr(trt, "IInt8EntropyCalibrator2")
    network = _parse_network(trt, builder, logger, source)
    builder_config = _builder_config(trt, builder, config, size)
    calibrator = None
    if config.int8 and int8_by_flag:
        calibrator = make_calibrator(
            trt, images, config.calib_batch, plan.with_name("calibration.cache")
        )
        _add_int8_calibration(trt, builder, builder_config, calibrator, config.calib_batch, size)
    try:
        serialized = builder.build_serialized_network(network, builder_config)
    finally:
        if calibrator is not None:
            calibrator.buffer.close()
    if serialized is None:
        raise ExportError("TensorRT failed to build the engine (see its log above)")
    data = bytes(serialized)
    facts = {
        "backend": "python",
        "tensorrt": trt.__version__,
        "source_onnx": source.name,
        "io_tensors": _checked_io_tensors(trt, logger, data),
    }
    if config.int8:
        facts["calibration"] = {
            "images": int(len(images)),
            "batch": config.calib_batch,
            "folder": str(config.calib_dir),
            "method": "IInt8EntropyCalibrator2"
            if int8_by_flag
            else "onnxruntime quantize_static, symmetric Q/DQ (entropy)",
        }
    return facts, len(data), data


def _parse_network(trt, builder, logger, source: Path):
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(source)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT could not parse {source.name}: {errors}")
    return network


def _builder_config(trt, builder, config: TensorRTConfig, size: int):
    """Workspace, the batch profile 1 .. opt .. max, and FP16 where asked."""
    builder_config = builder.create_builder_config()
    builder_config.set_memory_pool_limit(
        trt.MemoryPoolType.WORKSPACE, int(config.workspace_gib * (1 << 30))
    )
    opt = min(config.opt_batch, config.max_batch)
    profile = builder.create_optimization_profile()
    profile.set_shape(
        INPUT_NAME, (1, size, size, 3), (opt, size, size, 3), (config.max_batch, size, size, 3)
    )
    builder_config.add_optimization_profile(profile)
    if config.fp16 and hasattr(trt.BuilderFlag, "FP16"):
        builder_config.set_flag(trt.BuilderFlag.FP16)
    return builder_config


def _add_int8_calibration(trt, builder, builder_config, calibrator, batch: int, size: int) -> None:
    calibration_profile = builder.create_optimization_profile()
    shape = (batch, size, size, 3)
    calibration_profile.set_shape(INPUT_NAME, shape, shape, shape)
    builder_config.set_flag(trt.BuilderFlag.INT8)
    builder_config.int8_calibrator = calibrator
    builder_config.set_calibration_profile(calibration_profile)


def _checked_io_tensors(trt, logger, data: bytes) -> list[str]:
    """The engine just built deserialises and has the contract's tensors."""
    engine = trt.Runtime(logger).deserialize_cuda_engine(data)
    if engine is None:
        raise ExportError("the TensorRT engine just built does not deserialise")
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    if INPUT_NAME not in names or "probability_fake" not in names:
        raise ExportError(f"the TensorRT engine has unexpected tensors {names}")
    return names


def build_with_trtexec(
    entry: ModelEntry, config: TensorRTConfig, plan: Path, size: int
) -> tuple[dict, int, bytes]:
    """Build the engine with ``trtexec`` (FP32 / FP16)."""
    if config.int8:
        raise TensorRTUnavailable(
            "INT8 calibration needs the TensorRT Python API; only trtexec is available here"
        )
    source = onnx_source(entry, config, fp16_by_flag=True)
    opt = min(config.opt_batch, config.max_batch)
    shape = f"{size}x{size}x3"
    command = [
        shutil.which("trtexec") or "trtexec",
        f"--onnx={source}",
        f"--saveEngine={plan}",
        f"--minShapes={INPUT_NAME}:1x{shape}",
        f"--optShapes={INPUT_NAME}:{opt}x{shape}",
        f"--maxShapes={INPUT_NAME}:{config.max_batch}x{shape}",
        f"--memPoolSize=workspace:{int(config.workspace_gib * 1024)}M",
    ] + (["--fp16"] if config.fp16 else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not plan.is_file():
        tail = (done.stdout + done.stderr)[-2000:]
        raise ExportError(f"trtexec failed with status {done.returncode}:\n{tail}")
    data = plan.read_bytes()
    return {"backend": "trtexec", "source_onnx": source.name}, len(data), data


def build_plan(config: TensorRTConfig) -> dict:
    """Build ``model.plan`` for the entry and record it in its metadata; return the metadata."""
    try:
        entry = ModelRepository(config.repo).entry(config.name, config.version)
    except (ModelNotFound, InvalidModelName, InvalidMetadata) as exc:
        raise ExportError(str(exc)) from None
    backend = choose_backend(config.backend)
    size = entry.input_size
    plan = entry.path / FILES["plan"]
    staging = entry.path / f".{FILES['plan']}.{uuid.uuid4().hex[:8]}.tmp"
    build = build_with_python if backend == "python" else build_with_trtexec
    try:
        facts, size_bytes, data = build(entry, config, staging, size)
        staging.write_bytes(data)
        os.replace(staging, plan)
    finally:
        staging.unlink(missing_ok=True)
    precision = "int8" if config.int8 else "fp16" if config.fp16 else "fp32"
    opt = min(config.opt_batch, config.max_batch)
    facts.update(
        {
            "precision": precision,
            "profile": {"min_batch": 1, "opt_batch": opt, "max_batch": config.max_batch},
            "bytes": size_bytes,
            "built": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "note": "a TensorRT plan only runs on the GPU model and TensorRT version it was "
            "built with",
        }
    )
    files = {"plan": FILES["plan"]}
    if facts["source_onnx"] == FILES["onnx_qdq"]:
        files["onnx_qdq"] = FILES["onnx_qdq"]
    return update_metadata(entry.path, {"files": files, "tensorrt": facts})


def build_parser() -> argparse.ArgumentParser:
    return options_parser(
        "python -m export.tensorrt",
        "Build a TensorRT engine (model.plan) for a model-repository entry.\n"
        "Needs an NVIDIA GPU with TensorRT; exits with status 2 when there is none.",
        TensorRTConfig,
        epilog="example:\n  python -m export.tensorrt --repo models --name texture --fp16 "
        "--max-batch 64\n  python -m export.tensorrt --repo models --name texture --int8 "
        "--calib-dir data/detector/val",
    )


def _build_and_say(config: TensorRTConfig) -> str:
    metadata = build_plan(config)
    return f"wrote {Path(config.repo) / config.name / str(metadata['version']) / FILES['plan']}"


def main(argv: list[str] | None = None) -> int:
    return run_export_command(
        build_parser(), TensorRTConfig, argv, _build_and_say, failed="export.tensorrt"
    )


if __name__ == "__main__":
    sys.exit(main())
