"""The in-process pipeline limit: the server's own decode, preprocessing and session, no HTTP.

Uploads go through ``core.preprocessing.preprocess_bytes`` (with the model's contract, face
crop included) on a pool of decode threads, while this thread gathers rows into batches and
runs them on a ``serving.runtime.ModelRuntime`` — the same functions the server calls, with
decoding overlapped with inference over the same cores. Every combination of batch size,
decode threads and onnxruntime intra-op threads is timed; the best images/s is the limit the
server is compared with. One upload decoded and scored alone, back to back (the fastest
intra-op thread count), gives the in-process latency the server's c=1 latency is compared with.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from benchmarks.images import ImageSet
from core.modelrepo import ModelEntry
from core.options import check_positive, option
from core.preprocessing import PreprocessConfig, preprocess_bytes
from serving.runtime import ModelRuntime, RuntimeConfig


@dataclass(frozen=True)
class PipelineConfig:
    """The settings swept, and how long each is timed."""

    batch_sizes: tuple[int, ...] = (1, 8, 16, 32)
    decode_threads: tuple[int, ...] = (1, 2, 3)
    intra_op_threads: tuple[int, ...] = (1, 2)
    seconds_per_setting: float = option(
        3.0, "time per pipeline-limit setting (batch size x decode threads x intra-op threads)",
        float, flag="--pipeline-seconds",
    )  # fmt: skip
    confirm_seconds: float = option(
        6.0, "time the best setting is measured again: that run is the limit (the sweep's "
        "maximum over many noisy runs overstates it)", float, flag="--pipeline-confirm-seconds",
    )  # fmt: skip
    min_images: int = 32
    latency_runs: int = 64
    precision: str = "auto"  # as the server: the entry's serve_precision, else fp32
    # onnxruntime session options tried at the best setting:
    # (graph optimisation, memory arena, spin-waiting intra-op threads)
    session_variants: tuple[tuple[str, bool, bool], ...] = (
        ("extended", True, False), ("basic", True, False), ("all", False, False),
        ("all", True, True),
    )  # fmt: skip

    def __post_init__(self) -> None:
        for name in ("batch_sizes", "decode_threads", "intra_op_threads"):
            values = getattr(self, name)
            if not values or min(values) < 1:
                raise ValueError(f"{name} must be a non-empty tuple of integers >= 1, got {values}")
        check_positive(self, "seconds_per_setting", "confirm_seconds")


def run_setting(
    runtime: ModelRuntime,
    payloads: tuple[bytes, ...],
    contract: PreprocessConfig,
    batch_size: int,
    decode_threads: int,
    seconds: float,
    min_images: int,
) -> dict:
    """Images/s of decode threads feeding batches to ``runtime`` for about ``seconds``."""
    stream = itertools.cycle(payloads)
    window = batch_size * 2 + decode_threads  # rows decoded ahead of inference, bounded
    done = 0
    with ThreadPoolExecutor(decode_threads, thread_name_prefix="decode") as pool:
        pending: deque[Future] = deque(
            pool.submit(preprocess_bytes, next(stream), contract) for _ in range(window)
        )
        started = time.perf_counter()
        deadline = started + seconds
        while done < min_images or time.perf_counter() < deadline:
            rows = []
            for _ in range(batch_size):
                rows.append(pending.popleft().result())
                pending.append(pool.submit(preprocess_bytes, next(stream), contract))
            runtime.run(np.stack(rows))
            done += batch_size
        elapsed = time.perf_counter() - started
        for future in pending:
            future.cancel()
    return {
        "batch_size": batch_size,
        "decode_threads": decode_threads,
        "images": done,
        "images_per_s": round(done / elapsed, 2),
    }


def latency_batch1(
    runtime: ModelRuntime,
    payloads: tuple[bytes, ...],
    contract: PreprocessConfig,
    runs: int,
    lone: bool = False,
) -> dict:
    """Median and p99 ms of one upload decoded then scored alone, back to back (``lone``: on
    the runtime's lone-request session, as the server scores a request that finds it idle)."""
    times = []
    for index in range(runs):
        started = time.perf_counter()
        rows = preprocess_bytes(payloads[index % len(payloads)], contract)[None]
        runtime.run(rows, lone=lone)
        times.append(time.perf_counter() - started)
    seconds = np.asarray(times) * 1000.0
    return {
        "runs": runs,
        "ms_p50": round(float(np.median(seconds)), 3),
        "ms_p99": round(float(np.percentile(seconds, 99)), 3),
    }


def make_runtime(
    entry: ModelEntry,
    config: PipelineConfig,
    intra_op_threads: int,
    graph_optimization: str = "all",
    memory_arena: bool = True,
    spin_wait: bool = False,
    lone_session: bool = False,
) -> ModelRuntime:
    """A CPU session as the server builds it, warmed up at every swept batch size; with
    ``lone_session`` also the server's lone-request session (for the batch-1 latency)."""
    runtime = ModelRuntime(
        entry,
        RuntimeConfig(
            providers=("cpu",),
            intra_op_threads=intra_op_threads,
            graph_optimization=graph_optimization,
            memory_arena=memory_arena,
            spin_wait=spin_wait,
            lone_spin=lone_session,
            max_batch_size=max(config.batch_sizes),
            precision=config.precision,
        ),
    )
    runtime.warmup(tuple(sorted(set(config.batch_sizes))))
    return runtime


def best_runtime(entry: ModelEntry, config: PipelineConfig, best: dict) -> ModelRuntime:
    """A fresh session with the session options of the ``best`` setting."""
    return make_runtime(
        entry, config, best["intra_op_threads"], best["graph_optimization"],
        best["memory_arena"], best["spin_wait"],
    )  # fmt: skip


def confirm_best(entry: ModelEntry, images: ImageSet, config: PipelineConfig, best: dict) -> dict:
    """The best setting measured again, in a fresh session, for ``confirm_seconds``; that run
    is the limit. The sweep's maximum is the luckiest of many noisy runs and overstates what
    the setting does (the winner's curse); its figure is kept as ``swept_images_per_s``."""
    row = run_setting(
        best_runtime(entry, config, best), images.payloads, entry.preprocess_config(),
        best["batch_size"], best["decode_threads"], config.confirm_seconds, config.min_images,
    )  # fmt: skip
    return {**best, **row, "swept_images_per_s": best["images_per_s"]}


def measure_pipeline(entry: ModelEntry, images: ImageSet, config: PipelineConfig) -> dict:
    """Sweep every setting for one model; the best one is ``limit``."""
    contract = entry.preprocess_config()
    settings = []
    steps = [(t, b, d) for t in config.intra_op_threads for b in config.batch_sizes
             for d in config.decode_threads]  # fmt: skip
    progress = tqdm(steps, desc=f"pipeline limit {entry.name}", unit="setting")
    runtimes: dict[int, ModelRuntime] = {}
    for intra, batch, decode in progress:
        if intra not in runtimes:
            runtimes[intra] = make_runtime(entry, config, intra, lone_session=True)
        row = run_setting(
            runtimes[intra], images.payloads, contract, batch, decode,
            config.seconds_per_setting, config.min_images,
        )  # fmt: skip
        settings.append({"intra_op_threads": intra, "graph_optimization": "all",
                         "memory_arena": True, "spin_wait": False, **row})  # fmt: skip
        progress.set_postfix_str(f"{row['images_per_s']:.1f} img/s", refresh=False)
    best = max(settings, key=lambda row: row["images_per_s"])
    for graph, arena, spin in config.session_variants:
        runtime = make_runtime(entry, config, best["intra_op_threads"], graph, arena, spin)
        row = run_setting(
            runtime, images.payloads, contract, best["batch_size"], best["decode_threads"],
            config.seconds_per_setting, config.min_images,
        )  # fmt: skip
        settings.append({"intra_op_threads": best["intra_op_threads"], "graph_optimization": graph,
                         "memory_arena": arena, "spin_wait": spin, **row})  # fmt: skip
    best = confirm_best(entry, images, config, max(settings, key=lambda row: row["images_per_s"]))
    latencies = [  # both sessions the server has: batched, and lone (spinning during a run)
        {"intra_op_threads": intra, "lone_session": lone,
         **latency_batch1(runtime, images.payloads, contract, config.latency_runs, lone)}
        for intra, runtime in runtimes.items() for lone in (False, True)
    ]  # fmt: skip
    latency = min(latencies, key=lambda row: row["ms_p50"])
    return {
        "model": entry.name,
        "version": entry.version,
        "precision": config.precision,
        "model_file": runtimes[config.intra_op_threads[0]].path.name,
        "face_crop": entry.face_crop,
        "settings": settings,
        "limit": best,
        "batch1_latency": latency,
    }
