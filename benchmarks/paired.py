"""Paired rounds: the in-process limit and the running server, measured in turn.

On a shared VM the machine's speed drifts by 10-30 % within minutes, so a server figure
divided by a limit measured minutes before or after it measures the drift as much as the
server. Each round times the pipeline limit at its best setting, then the server at the same
concurrency (c=64), then the in-process batch-1 latency, then the server at c=1, a few
seconds each, one after the other; each round gives its own ratio and overhead, and the
median round is reported. The server runs throughout (idle while the in-process pipeline is
timed), and the in-process sessions are built once, before the first round.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace

from tqdm import tqdm

from benchmarks.images import ImageSet
from benchmarks.loadgen import LoadConfig, run_level_sync
from benchmarks.pipeline import (
    PipelineConfig,
    best_runtime,
    latency_batch1,
    make_runtime,
    run_setting,
)
from core.modelrepo import ModelEntry
from core.options import check_at_least, check_positive, option


@dataclass(frozen=True)
class PairedConfig:
    """How many rounds, how long each half, and the two concurrency levels compared."""

    rounds: int = option(
        3, "paired rounds per model (limit, then server, in turn); 0 skips them", int,
        flag="--paired-rounds",
    )  # fmt: skip
    seconds: float = option(
        4.0, "time each half of a paired round's throughput pair runs", float,
        flag="--paired-seconds",
    )  # fmt: skip
    concurrency: int = 64
    latency_requests: int = 100  # server requests at c=1 per round
    latency_runs: int = 64  # in-process batch-1 runs per round

    def __post_init__(self) -> None:
        check_at_least(self, 0, "rounds")
        check_at_least(self, 1, "concurrency", "latency_requests", "latency_runs")
        check_positive(self, "seconds")


MEDIANS = (
    "limit_images_per_s",
    "server_images_per_s",
    "server_over_limit",
    "in_process_ms_p50",
    "server_c1_ms_p50",
    "c1_overhead_ms_p50",
)  # reported as the median over the rounds


def measure_paired(
    entry: ModelEntry,
    images: ImageSet,
    pipeline_config: PipelineConfig,
    pipeline: dict,
    load: LoadConfig,
    config: PairedConfig,
) -> dict:
    """``config.rounds`` rounds of (limit, server at ``config.concurrency``, in-process batch-1
    latency, server at c=1) against the server ``load`` points at; medians over the rounds.
    ``pipeline`` is :func:`benchmarks.pipeline.measure_pipeline`'s result (its best setting)."""
    best, latency = pipeline["limit"], pipeline["batch1_latency"]
    contract = entry.preprocess_config()
    throughput_runtime = best_runtime(entry, pipeline_config, best)
    latency_runtime = make_runtime(
        entry, pipeline_config, latency["intra_op_threads"],
        lone_session=latency.get("lone_session", False),
    )  # fmt: skip
    load = replace(load, metrics_path=None)  # the rounds need no batch histograms
    loaded = replace(
        load, concurrency=config.concurrency, duration_s=config.seconds,
        requests=1_000_000, warmup_requests=config.concurrency,
    )  # fmt: skip
    single = replace(
        load, concurrency=1, requests=config.latency_requests, warmup_requests=8,
        duration_s=max(config.seconds, 30.0),
    )  # fmt: skip
    rounds = []
    for _ in tqdm(range(config.rounds), desc=f"paired rounds {entry.name}", unit="round"):
        limit = run_setting(
            throughput_runtime, images.payloads, contract, best["batch_size"],
            best["decode_threads"], config.seconds, pipeline_config.min_images,
        )["images_per_s"]  # fmt: skip
        server = run_level_sync(loaded, images)
        in_process = latency_batch1(
            latency_runtime, images.payloads, contract, config.latency_runs,
            latency.get("lone_session", False),
        )["ms_p50"]  # fmt: skip
        lone = run_level_sync(single, images)
        rounds.append(
            {
                "limit_images_per_s": limit,
                "server_images_per_s": server["images_per_s"],
                "server_over_limit": round(server["images_per_s"] / limit, 3),
                "server_errors": server["errors"],
                "in_process_ms_p50": in_process,
                "server_c1_ms_p50": lone["latency_ms"]["p50"],
                "c1_overhead_ms_p50": round(lone["latency_ms"]["p50"] - in_process, 3),
                "c1_errors": lone["errors"],
            }
        )
    return {
        "concurrency": config.concurrency,
        "seconds": config.seconds,
        "rounds": rounds,
        **{key: round(statistics.median(r[key] for r in rounds), 3) for key in MEDIANS},
    }
