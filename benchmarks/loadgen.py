"""The closed-loop load generator: ``concurrency`` workers, each one request in flight.

Workers send the encoded image bytes as the raw request body to ``POST /v1/predict``
until a request count or a time limit is reached (whichever first), and every latency,
status and error is recorded. The client's own CPU time is measured too, so a report can
show whether the client, not the server, was the limit.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.cli import positive_ints
from benchmarks.images import ImageSet
from benchmarks.promtext import Histogram, diff_histograms, find_batch_histogram, parse_histograms
from benchmarks.rawhttp import RawHttpConnection
from core.options import check_at_least, check_positive, option, parse_optional_path

CDF_POINTS = 101  # latency quantiles 0%, 1%, ..., 100%
CONCURRENCY_HELP = "comma-separated concurrency levels (requests in flight)"


@dataclass(frozen=True)
class LoadLevels:
    """The load levels of a run: how many requests each, with which client and images."""

    concurrency: tuple[int, ...] = option(
        (1, 4, 16, 64), CONCURRENCY_HELP, positive_ints, metavar="N,N,..."
    )
    requests: int = option(400, "measured requests per level", int)
    duration_s: float = option(8.0, "time limit per level in seconds", float, flag="--duration")
    warmup_requests: int = option(16, "unmeasured requests per level", int, flag="--warmup")
    images: Path | None = option(
        None, "folder of images to send (default: data/detector/test, else synthetic 256x256 "
        "JPEGs)", parse_optional_path,
    )  # fmt: skip
    image_limit: int = option(64, "most images to load", int)

    def __post_init__(self) -> None:
        check_at_least(self, 1, "concurrency", "requests", "image_limit")
        check_at_least(self, 0, "warmup_requests")
        check_positive(self, "duration_s")


@dataclass(frozen=True)
class LoadConfig:
    """One load level against one server."""

    base_url: str
    concurrency: int = 1
    requests: int = 400  # stop after this many measured requests ...
    duration_s: float = 10.0  # ... or after this long, whichever comes first
    warmup_requests: int = 8  # sent (not measured) before the level starts
    timeout_s: float = 30.0
    path: str = "/v1/predict"
    metrics_path: str | None = "/metrics"  # None: the server has no Prometheus endpoint
    batch_metric: str | None = None  # histogram name; None: auto-detect "*batch_size*"

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.requests < 1 or self.duration_s <= 0:
            raise ValueError("requests must be >= 1 and duration_s > 0")


async def scrape_histograms(config: LoadConfig) -> dict[str, Histogram] | None:
    """The server's Prometheus histograms now, or None when it has no metrics endpoint."""
    if not config.metrics_path:
        return None
    connection = RawHttpConnection(config.base_url)
    try:
        status, body = await connection.request(
            "GET", config.metrics_path, b"", timeout_s=config.timeout_s
        )
    except (OSError, TimeoutError):
        return None
    finally:
        await connection.close()
    if status != 200:
        return None
    try:
        return parse_histograms(body.decode("utf-8", "replace"))
    except ValueError:  # not Prometheus text (a server without metrics answering 200)
        return None


def _error_key(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    return f"error:{type(exc).__name__}"


async def run_level(config: LoadConfig, images: ImageSet) -> dict:
    """Run one load level and return its measurements (JSON-ready)."""
    payloads = images.payloads
    if not payloads:
        raise ValueError("no images to send")
    connections = [RawHttpConnection(config.base_url) for _ in range(config.concurrency)]
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    picks = itertools.count()
    try:

        async def send_one(connection: RawHttpConnection, record: bool) -> None:
            body = payloads[next(picks) % len(payloads)]
            started = time.perf_counter()
            try:
                status, _ = await connection.request(
                    "POST", config.path, body, images.content_type, timeout_s=config.timeout_s
                )
                key = str(status)
            except Exception as exc:  # every failure is counted, none stops the level
                key = _error_key(exc)
            if record:
                statuses[key] += 1
                if key == "200":
                    latencies.append(time.perf_counter() - started)

        async def closed_loop(count: int, seconds: float, record: bool) -> None:
            issued = itertools.count()
            deadline = time.perf_counter() + seconds

            async def worker(connection: RawHttpConnection) -> None:
                while time.perf_counter() < deadline and next(issued) < count:
                    await send_one(connection, record)

            await asyncio.gather(*(worker(connection) for connection in connections))

        await closed_loop(config.warmup_requests, config.duration_s, record=False)
        before = await scrape_histograms(config)  # after warm-up: only measured batches count
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        await closed_loop(config.requests, config.duration_s, record=True)
        wall = time.perf_counter() - wall_start
        client_cpu = time.process_time() - cpu_start
    finally:
        await asyncio.gather(*(connection.close() for connection in connections))
    after = await scrape_histograms(config)
    return summarise_level(config, statuses, latencies, wall, client_cpu, before, after)


def latency_stats(latencies_s: list[float]) -> tuple[dict, list[float]]:
    """Percentiles (ms) and the 101-point latency CDF (quantiles in ms)."""
    if not latencies_s:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}, []
    ms = np.asarray(latencies_s) * 1000.0
    stats = {
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
        "mean": float(ms.mean()),
    }
    cdf = [round(float(v), 3) for v in np.percentile(ms, np.linspace(0, 100, CDF_POINTS))]
    return {key: round(value, 3) for key, value in stats.items()}, cdf


def summarise_level(
    config: LoadConfig,
    statuses: Counter[str],
    latencies: list[float],
    wall_s: float,
    client_cpu_s: float,
    before: dict[str, Histogram] | None,
    after: dict[str, Histogram] | None,
) -> dict:
    """The JSON record of one level."""
    stats, cdf = latency_stats(latencies)
    ok = statuses.get("200", 0)
    changes = diff_histograms(before, after)
    batches = find_batch_histogram(changes, config.batch_metric)
    return {
        "concurrency": config.concurrency,
        "requests": sum(statuses.values()),
        "ok": ok,
        "errors": {key: count for key, count in sorted(statuses.items()) if key != "200"},
        "wall_s": round(wall_s, 4),
        "images_per_s": round(ok / wall_s, 3) if wall_s > 0 else 0.0,
        "latency_ms": stats,
        "latency_cdf_ms": cdf,
        "client_cpu_s": round(client_cpu_s, 4),
        "client_cpu_percent": round(100.0 * client_cpu_s / wall_s, 1) if wall_s > 0 else None,
        "client_cpu_ms_per_request": (
            round(1000.0 * client_cpu_s / max(1, sum(statuses.values())), 4)
        ),
        "batch_sizes": (
            {
                "histogram": batches.name,
                "distribution": batches.distribution(),
                "batches": int(round(batches.count)),
                "mean": round(batches.mean(), 3) if batches.mean() is not None else None,
            }
            if batches is not None
            else None
        ),
        "server_histograms": {
            name: {"count": int(round(h.count)), "mean": h.mean()}
            for name, h in sorted(changes.items())
            if h.count
        },
        "config": {key: value for key, value in asdict(config).items() if key not in ("base_url",)},
    }


def run_level_sync(config: LoadConfig, images: ImageSet) -> dict:
    """:func:`run_level` from synchronous code (its own event loop)."""
    return asyncio.run(run_level(config, images))
