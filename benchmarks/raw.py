"""The raw limit: onnxruntime in this process on pre-decoded batches, no HTTP, no decode.

For each model file variant (FP32, FP16, INT8) and each execution provider, every batch
size is timed for a bounded number of runs and a bounded time; the best batch size's
images/s is the ceiling a server on this machine can approach.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.cli import positive_ints
from benchmarks.images import ImageSet, decoded_batch
from core.options import check_at_least, check_positive, option

PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
PROVIDER_LABELS = {
    "TensorrtExecutionProvider": "tensorrt",
    "CUDAExecutionProvider": "cuda",
    "CPUExecutionProvider": "cpu",
}
VARIANT_KEYS = {
    "fp32": ("onnx", "model.onnx"),
    "fp16": ("onnx_fp16", "model.fp16.onnx"),
    "int8": ("onnx_int8", "model.int8.onnx"),
}


@dataclass(frozen=True)
class RawConfig:
    """How long to time each batch size."""

    batch_sizes: tuple[int, ...] = option(
        (1, 2, 4, 8, 16, 32, 64), "raw onnxruntime batch sizes", positive_ints, metavar="N,N,..."
    )
    warmup_runs: int = 2
    min_runs: int = 3
    max_runs: int = 200
    seconds_per_batch_size: float = option(
        2.0, "time budget per raw batch size", float, flag="--raw-seconds"
    )
    intra_op_threads: int = 0  # 0: onnxruntime's default (all cores)
    tensorrt_fp16: bool = True  # TensorRT provider builds FP16 engines (the GPU target)

    def __post_init__(self) -> None:
        check_at_least(self, 1, "batch_sizes", "min_runs", "max_runs")
        check_at_least(self, 0, "warmup_runs", "intra_op_threads")
        check_positive(self, "seconds_per_batch_size")


def variant_files(entry: Path, metadata: dict) -> dict[str, Path]:
    """Model files present in the entry, by variant name (``fp32`` always first)."""
    files = metadata.get("files", {})
    found = {}
    for variant, (key, default) in VARIANT_KEYS.items():
        path = entry / files.get(key, default)
        if path.is_file():
            found[variant] = path
    return found


def available_providers(requested: tuple[str, ...] | None = None) -> list[str]:
    """Requested providers (labels or full names) that this onnxruntime build offers."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    wanted = requested or tuple(PROVIDER_LABELS.values())
    full = {label: name for name, label in PROVIDER_LABELS.items()}
    chosen = [full.get(item, item) for item in wanted]
    return [name for name in PROVIDER_ORDER if name in chosen and name in available]


def _input_profile(model: Path, max_batch: int) -> dict:
    """TensorRT optimisation-profile options covering batch sizes 1..``max_batch``."""
    import onnx

    graph_input = onnx.load(str(model), load_external_data=False).graph.input[0]
    dims = [dim.dim_value for dim in graph_input.type.tensor_type.shape.dim[1:]]
    shape = "x".join(str(dim) for dim in dims)
    return {
        "trt_profile_min_shapes": f"{graph_input.name}:1x{shape}",
        "trt_profile_opt_shapes": f"{graph_input.name}:{max_batch}x{shape}",
        "trt_profile_max_shapes": f"{graph_input.name}:{max_batch}x{shape}",
    }


def make_session(model: Path, provider: str, config: RawConfig, cache_dir: Path | None = None):
    """An InferenceSession on exactly one provider (CPU kept as fallback for GPU ones)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if config.intra_op_threads:
        options.intra_op_num_threads = config.intra_op_threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers: list = [provider]
    if provider == "TensorrtExecutionProvider":
        trt = {
            "trt_fp16_enable": config.tensorrt_fp16,
            **_input_profile(model, max(config.batch_sizes)),
        }
        if cache_dir is not None:
            trt.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(cache_dir))
        providers = [(provider, trt), "CUDAExecutionProvider", "CPUExecutionProvider"]
    elif provider == "CUDAExecutionProvider":
        providers = [provider, "CPUExecutionProvider"]
    return ort.InferenceSession(str(model), options, providers=providers)


def _time_batch(session, feed_name: str, outputs, batch: np.ndarray, config: RawConfig) -> dict:
    for _ in range(config.warmup_runs):
        session.run(outputs, {feed_name: batch})
    times: list[float] = []
    budget_end = time.perf_counter() + config.seconds_per_batch_size
    while len(times) < config.max_runs and (
        len(times) < config.min_runs or time.perf_counter() < budget_end
    ):
        started = time.perf_counter()
        session.run(outputs, {feed_name: batch})
        times.append(time.perf_counter() - started)
    seconds = np.asarray(times)
    size = batch.shape[0]
    return {
        "batch_size": size,
        "runs": len(times),
        "images_per_s": round(size * len(times) / float(seconds.sum()), 3),
        "batch_ms_p50": round(float(np.median(seconds)) * 1000.0, 4),
        "per_image_ms": round(float(np.median(seconds)) * 1000.0 / size, 4),
    }


def measure_model(
    model: Path, provider: str, images: ImageSet, config: RawConfig, variant: str = "fp32"
) -> dict:
    """Time every batch size of one model file on one provider."""
    load_started = time.perf_counter()
    session = make_session(model, provider, config)
    load_s = time.perf_counter() - load_started
    feed = session.get_inputs()[0]
    size = int(feed.shape[1]) if isinstance(feed.shape[1], int) else 224
    dtype = np.float16 if "float16" in feed.type else np.float32
    names = [output.name for output in session.get_outputs()]
    outputs = ["probability_fake"] if "probability_fake" in names else None
    base = decoded_batch(images, max(config.batch_sizes), size).astype(dtype)
    rows = [
        _time_batch(session, feed.name, outputs, base[:bs], config) for bs in config.batch_sizes
    ]
    best = max(rows, key=lambda row: row["images_per_s"])
    batch_one = next((row for row in rows if row["batch_size"] == 1), None)
    return {
        "variant": variant,
        "provider": PROVIDER_LABELS.get(provider, provider),
        "providers_in_session": session.get_providers(),
        "file": model.name,
        "session_load_s": round(load_s, 3),
        "batches": rows,
        "best": {"batch_size": best["batch_size"], "images_per_s": best["images_per_s"]},
        "batch1_latency_ms": batch_one["batch_ms_p50"] if batch_one else None,
    }


def measure_preprocessing(images: ImageSet, input_size: int = 224, runs: int = 64) -> dict:
    """Median in-process cost of ``core.preprocessing.preprocess_bytes`` on the payloads."""
    from core.preprocessing import PreprocessConfig, preprocess_bytes

    config = PreprocessConfig(size=input_size)
    times = []
    for index in range(runs):
        payload = images.payloads[index % len(images.payloads)]
        started = time.perf_counter()
        preprocess_bytes(payload, config)
        times.append(time.perf_counter() - started)
    return {"runs": runs, "ms_p50": round(float(np.median(times)) * 1000.0, 4)}
