"""Prometheus metrics in a per-app registry (several apps can live in one process).

With ``--workers N`` the server runs in Prometheus multiprocess mode: the parent process sets
``PROMETHEUS_MULTIPROC_DIR`` before the workers start, every worker writes its values to
files there, and ``/metrics`` (answered by any worker) sums them over the whole server.
"""

from __future__ import annotations

import os
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
BATCH_BUCKETS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 128, 256)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServingMetrics:
    """All server metrics, registered in their own :class:`CollectorRegistry`."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.multiprocess_dir = os.environ.get(MULTIPROCESS_ENV) or None
        model = ["model", "version"]
        self.requests = Counter(
            "dfd_http_requests", "HTTP requests answered", ["route", "method", "status"],
            registry=self.registry,
        )  # fmt: skip

        def histogram(name: str, documentation: str, labels: list[str], buckets) -> Histogram:
            return Histogram(name, documentation, labels, buckets=buckets, registry=self.registry)

        self.request_seconds = histogram(
            "dfd_http_request_duration_seconds", "HTTP request latency", ["route"], LATENCY_BUCKETS
        )
        self.batch_size = histogram("dfd_batch_size", "rows per model run", model, BATCH_BUCKETS)
        self.queue_delay = histogram(
            "dfd_queue_delay_seconds", "time from submission to its first model run", model,
            LATENCY_BUCKETS,
        )  # fmt: skip
        self.model_run = histogram(
            "dfd_model_run_seconds", "model run time per batch", model, LATENCY_BUCKETS
        )
        self.queue_depth = Gauge(
            "dfd_queue_depth_rows", "rows waiting for a model run", model,
            registry=self.registry, multiprocess_mode="livesum",
        )  # fmt: skip
        self.rejections = Counter(
            "dfd_batcher_rejections", "submissions refused or abandoned",
            [*model, "reason"], registry=self.registry,
        )  # fmt: skip
        self.bulk_runs_stopped = Counter(
            "dfd_bulk_runs_stopped", "grown bulk model runs stopped for a prediction (rerun)",
            model, registry=self.registry,
        )  # fmt: skip

        def verdicts(name: str, documentation: str) -> Counter:
            return Counter(name, documentation, [*model, "label"], registry=self.registry)

        self.predictions = verdicts("dfd_predictions", "images classified")
        self.video_predictions = verdicts(
            "dfd_video_predictions", "videos classified (one verdict per clip)"
        )
        # access control (serving/auth.py, serving/ratelimit.py)
        self.auth_failures = Counter(
            "dfd_auth_failures", "requests refused for a missing or invalid API key (401)",
            ["reason"], registry=self.registry,
        )  # fmt: skip
        self.rate_limited = Counter(
            "dfd_rate_limited", "requests refused by the per-client rate limit (429)",
            ["kind"], registry=self.registry,
        )  # fmt: skip
        self.ready = Gauge(
            "dfd_ready", "1 when warmed up and serving (every worker)",
            registry=self.registry, multiprocess_mode="livemin",
        )  # fmt: skip

    def observer(self, model: str, version: int) -> ModelObserver:
        return ModelObserver(self, model, str(version))

    def render(self) -> bytes:
        """The text exposition: this app's registry, or every worker's files summed."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)
        return generate_latest(registry)


class ModelObserver:
    """The batcher's measurements for one model version (see ``batcher.BatchObserver``)."""

    def __init__(self, metrics: ServingMetrics, model: str, version: str) -> None:
        labels = {"model": model, "version": version}
        self._batch_size = metrics.batch_size.labels(**labels)
        self._run = metrics.model_run.labels(**labels)
        self._delay = metrics.queue_delay.labels(**labels)
        self._depth = metrics.queue_depth.labels(**labels)
        self._rejections = metrics.rejections
        self._stopped = metrics.bulk_runs_stopped.labels(**labels)
        self._labels = labels

    def batch_done(self, rows: int, run_seconds: float) -> None:
        self._batch_size.observe(rows)
        self._run.observe(run_seconds)

    def queue_delay(self, seconds: float) -> None:
        self._delay.observe(seconds)

    def queue_depth(self, rows: int) -> None:
        self._depth.set(rows)

    def rejected(self, reason: str) -> None:
        self._rejections.labels(**self._labels, reason=reason).inc()

    def bulk_run_stopped(self) -> None:
        self._stopped.inc()


class RequestMetricsMiddleware:
    """Counts requests and their latency by endpoint name (bounded label values)."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            endpoint = scope.get("endpoint")
            route = getattr(endpoint, "__name__", None) or type(endpoint).__name__
            route = route if endpoint is not None else "unmatched"
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.request_seconds.labels(route).observe(time.perf_counter() - start)
