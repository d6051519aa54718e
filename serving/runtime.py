"""One ONNX Runtime session per model version, on the best execution provider available.

Provider preference TensorRT -> CUDA -> CPU, filtered by ``ort.get_available_providers()``;
CPU is always last so a session can fall back to it for unsupported nodes.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from core.modelrepo import ModelEntry
from core.options import check_at_least, check_choice, option, parse_bool, parse_names
from serving.batcher import RunStopped, StopSignal

logger = logging.getLogger("serving.runtime")

PROVIDER_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
GRAPH_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
PRECISION_FILE_KEYS = {"fp32": "onnx", "fp16": "onnx_fp16", "int8": "onnx_int8"}
PRECISIONS = ("auto", *PRECISION_FILE_KEYS)


@dataclass(frozen=True)
class RuntimeConfig:
    """How sessions are built."""

    providers: tuple[str, ...] = option(
        tuple(PROVIDER_NAMES),
        "execution provider preference, comma separated; unavailable ones are skipped",
        parse_names,
    )
    intra_op_threads: int = 0
    graph_optimization: str = option(
        "all", "onnxruntime graph optimisation level", choices=tuple(GRAPH_LEVELS)
    )
    memory_arena: bool = option(
        True, "onnxruntime's CPU memory arena (buffers reused across runs)", parse_bool
    )
    spin_wait: bool = option(
        False,
        "onnxruntime's intra-op threads of the batched session spin while they wait for work: "
        "a little lower latency on an idle machine, but the spinning takes the cores that "
        "decode uploads",
        parse_bool,
    )
    lone_spin: bool = option(
        True,
        "a second CPU session for requests that find the model idle, whose intra-op threads "
        "spin during a run and stop when it returns: lower latency for a lone request, while "
        "batched runs keep --spin-wait's setting",
        parse_bool,
    )
    device_id: int = option(0, "GPU index for the CUDA and TensorRT providers", int)
    trt_fp16: bool = option(True, "let TensorRT use fp16 kernels", parse_bool)
    trt_cache_dir: Path = Path("models/.trt_cache")
    max_batch_size: int = 32
    precision: str = option(
        "auto",
        "which ONNX file of each entry to serve: auto is the entry's serve_precision (set by "
        "the export when its INT8 file passed the accuracy gate), else fp32; a missing "
        "variant falls back to fp32",
        choices=PRECISIONS,
    )

    def __post_init__(self) -> None:
        unknown = [p for p in self.providers if p not in PROVIDER_NAMES]
        if unknown or not self.providers:
            raise ValueError(f"providers must be some of {', '.join(PROVIDER_NAMES)}")
        check_at_least(self, 0, "intra_op_threads", "device_id")
        check_at_least(self, 1, "max_batch_size")
        check_choice(self, "graph_optimization", tuple(GRAPH_LEVELS))
        check_choice(self, "precision", PRECISIONS)


def choose_providers(preference: tuple[str, ...], available: list[str]) -> list[str]:
    """ORT provider names from ``preference`` that are available, with CPU always last."""
    chosen = [PROVIDER_NAMES[p] for p in preference if PROVIDER_NAMES[p] in available]
    chosen = [name for name in chosen if name != PROVIDER_NAMES["cpu"]]
    return [*chosen, PROVIDER_NAMES["cpu"]]


def provider_options(provider: str, config: RuntimeConfig, entry: ModelEntry) -> dict:
    """Options for one provider: TensorRT gets fp16, an engine cache and a batch profile."""
    if provider == PROVIDER_NAMES["tensorrt"]:
        cache = config.trt_cache_dir / entry.name / str(entry.version)
        cache.mkdir(parents=True, exist_ok=True)
        size = entry.input_size
        shape = f"{entry.input_name}:{{n}}x{size}x{size}x3"
        return {
            "device_id": config.device_id,
            "trt_fp16_enable": config.trt_fp16,
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache),
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": str(cache),
            "trt_profile_min_shapes": shape.format(n=1),
            "trt_profile_opt_shapes": shape.format(n=config.max_batch_size),
            "trt_profile_max_shapes": shape.format(n=config.max_batch_size),
        }
    if provider == PROVIDER_NAMES["cuda"]:
        return {"device_id": config.device_id}
    return {}


def session_options(config: RuntimeConfig, lone: bool = False) -> ort.SessionOptions:
    """Graph level, memory arena, spinning and thread counts; one inter-op thread,
    sequential. ``lone``: the session for lone requests, whose intra-op threads spin while a
    run lasts and stop when it returns (``session.force_spinning_stop``)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = GRAPH_LEVELS[config.graph_optimization]
    options.enable_cpu_mem_arena = config.memory_arena
    spin = "1" if config.spin_wait or lone else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    if lone:
        options.add_session_config_entry("session.force_spinning_stop", "1")
    if config.intra_op_threads:
        options.intra_op_num_threads = config.intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return options


def model_file(entry: ModelEntry, precision: str, on_gpu: bool = False) -> Path:
    """The ONNX file for ``precision`` (``auto``: the entry's ``serve_precision``), or the
    fp32 one when the entry has no such variant.

    On a GPU provider the fp32 model comes from ``files.onnx_portable`` when present: the
    default ``model.onnx`` is ONNX Runtime's CPU-optimised graph, whose fused CPU-only
    operators TensorRT cannot parse.
    """
    if precision == "auto":  # the GPU providers build their own reduced precision
        precision = "fp32" if on_gpu else entry.metadata.get("serve_precision", "fp32")
        if precision not in PRECISION_FILE_KEYS:
            raise ValueError(f"{entry.name}:{entry.version}: unknown serve_precision {precision!r}")
    portable = entry.metadata.get("files", {}).get("onnx_portable")
    if on_gpu and precision == "fp32" and portable and (entry.path / portable).is_file():
        return entry.path / portable
    key = PRECISION_FILE_KEYS[precision]
    name = entry.metadata.get("files", {}).get(key)
    if precision != "fp32" and name and (entry.path / name).is_file():
        return entry.path / name
    if precision != "fp32":
        logger.warning("%s:%s has no %s model; serving fp32", entry.name, entry.version, precision)
    return entry.onnx_path


def precision_of(entry: ModelEntry, path: Path) -> str:
    """Which variant ``path`` is (``fp32`` for the portable and optimised FP32 files)."""
    files = entry.metadata.get("files", {})
    return next(
        (p for p, key in PRECISION_FILE_KEYS.items() if files.get(key) == path.name), "fp32"
    )


def served_metrics(entry: ModelEntry, precision: str) -> dict | None:
    """What the export measured for a reduced-precision variant on labelled test images
    (ROC-AUC and accuracy beside FP32's), or None for FP32 / not measured."""
    measured = (entry.metadata.get("parity") or {}).get(precision) or {}
    keys = ("images", "roc_auc", "roc_auc_fp32", "accuracy", "accuracy_fp32")
    if precision == "fp32" or "roc_auc" not in measured:
        return None
    return {key: measured[key] for key in keys if key in measured}


def grey_batch(rows: int, input_size: int) -> np.ndarray:
    """``rows`` mid-grey model inputs: for warm-up and timing runs."""
    return np.full((rows, input_size, input_size, 3), 127.5, np.float32)


def fastest_batch_size(
    run: Callable[[np.ndarray], object],
    sizes: Sequence[int],
    input_size: int,
    rounds: int = 5,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[int, dict[int, float]]:
    """Of ``sizes``, the batch size ``run`` takes the least time per row for, and the
    seconds per row of each size: the best of ``rounds`` runs on mid-grey rows, each round
    over every size in turn (reversed every other round), so neither a first run building
    kernels nor the machine's drift favours a size."""
    batches = {size: grey_batch(size, input_size) for size in sizes}
    best = dict.fromkeys(sizes, math.inf)
    for index in range(rounds):
        for size in sizes if index % 2 == 0 else reversed(sizes):
            started = clock()
            run(batches[size])
            best[size] = min(best[size], clock() - started)
    per_row = {size: seconds / size for size, seconds in best.items()}
    return min(per_row, key=per_row.__getitem__), per_row


class ModelRuntime:
    """The inference sessions of one repository entry; ``run`` is called from one thread.

    On the CPU with ``lone_spin``, a second session of the same file serves lone requests
    (``run(batch, lone=True)``): its intra-op threads spin between the operators of a run
    instead of sleeping and being woken for each, and stop when the run returns, so nothing
    spins between requests. Measured with ``hey`` on 2 cores (``lite0``, four alternating
    rounds): c=1 p50 7.7 against 9.2 ms without it, c=64 181 against 179 images/s; the same
    spinning in the one session had cost 5-7 % at c=64.
    """

    def __init__(self, entry: ModelEntry, config: RuntimeConfig) -> None:
        self.entry = entry
        wanted = choose_providers(config.providers, ort.get_available_providers())
        on_gpu = wanted[0] != "CPUExecutionProvider"
        self.path = model_file(entry, config.precision, on_gpu=on_gpu)
        self.session = ort.InferenceSession(
            str(self.path),
            sess_options=session_options(config),
            providers=[(name, provider_options(name, config, entry)) for name in wanted],
        )
        self.lone_session = (
            ort.InferenceSession(
                str(self.path),
                sess_options=session_options(config, lone=True),
                providers=["CPUExecutionProvider"],
            )
            if config.lone_spin and not on_gpu
            else None
        )
        self.providers = self.session.get_providers()
        self.precision = precision_of(entry, self.path)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [output.name for output in self.session.get_outputs()]
        self.input_size = entry.input_size
        logger.info(
            "loaded %s:%s from %s with providers %s",
            entry.name, entry.version, self.path.name, ", ".join(self.providers),
        )  # fmt: skip

    def run(
        self, batch: np.ndarray, lone: bool = False, stop: StopSignal | None = None
    ) -> dict[str, np.ndarray]:
        """All outputs for a float32 ``[N, S, S, 3]`` batch, keyed by output name; ``lone``:
        on the lone-request session where there is one. ``stop`` may end the run early
        (between two operators, onnxruntime's terminate flag): :class:`RunStopped`."""
        session = self.lone_session if lone and self.lone_session is not None else self.session
        options = None
        if stop is not None:
            options = ort.RunOptions()
            stop.on_stop(functools.partial(setattr, options, "terminate", True))
        try:
            values = session.run(self.output_names, {self.input_name: batch}, options)
        except Exception:
            if stop is not None and stop.requested:
                raise RunStopped(f"{self.entry.name} run stopped early") from None
            raise
        return dict(zip(self.output_names, values, strict=True))

    def warmup(self, batch_sizes: tuple[int, ...]) -> dict[int, float]:
        """Run a mid-grey batch at each size once; seconds per size (first runs build kernels)."""
        timings = {}
        for size in batch_sizes:
            batch = grey_batch(size, self.input_size)
            start = time.perf_counter()
            self.run(batch)
            timings[size] = time.perf_counter() - start
        if self.lone_session is not None:  # lone requests are one upload each
            self.run(grey_batch(1, self.input_size), lone=True)
        logger.info(
            "warmed up %s:%s: %s",
            self.entry.name, self.entry.version,
            ", ".join(f"batch {n} {t * 1000:.1f} ms" for n, t in timings.items()),
        )  # fmt: skip
        return timings
