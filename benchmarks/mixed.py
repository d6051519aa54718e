"""Predictions while explanations run: interactive latency alone and beside LIME.

Our load generator runs predictions at one concurrency twice: alone, then while
``explanations`` LIME requests are kept in flight by background threads (each sends the next
as soon as its last one is answered). The ratio of the two p99s is the target (≤ 2).
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from benchmarks.images import ImageSet
from benchmarks.loadgen import LoadConfig, run_level_sync


@dataclass(frozen=True)
class MixedConfig:
    """The interactive load and the explanations beside it."""

    concurrency: int = 4
    requests: int = 400
    duration_s: float = 10.0
    explanations: int = 2
    num_samples: int = 1000

    def __post_init__(self) -> None:
        if min(self.concurrency, self.requests, self.explanations, self.num_samples) < 1:
            raise ValueError("concurrency, requests, explanations and num_samples must be >= 1")


def explain_forever(base_url: str, payload: bytes, content_type: str, path: str,
                    stop: threading.Event, answers: list[int]) -> None:  # fmt: skip
    """POST explanations back to back until ``stop`` is set; record each status."""
    parts = urlsplit(base_url)
    while not stop.is_set():
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        try:
            connection.request("POST", path, payload, {"Content-Type": content_type})
            response = connection.getresponse()
            response.read()
            answers.append(response.status)
        except OSError:
            answers.append(0)
        finally:
            connection.close()


def measure_mixed(base_url: str, images: ImageSet, payload: bytes, config: MixedConfig) -> dict:
    """Prediction latency alone, then with LIME explanations in flight."""
    load = LoadConfig(
        base_url=base_url, concurrency=config.concurrency, requests=config.requests,
        duration_s=config.duration_s, warmup_requests=config.concurrency, metrics_path=None,
    )  # fmt: skip
    alone = run_level_sync(load, images)
    stop, answers = threading.Event(), []
    path = f"/v1/explain?method=lime&num_samples={config.num_samples}"
    threads = [
        threading.Thread(
            target=explain_forever,
            args=(base_url, payload, images.content_type, path, stop, answers),
            daemon=True,
        )
        for _ in range(config.explanations)
    ]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # the explanations are past their segmentation and scoring rows
    beside = run_level_sync(load, images)
    stop.set()
    for thread in threads:
        thread.join(timeout=180)
    alone_p99, beside_p99 = alone["latency_ms"]["p99"], beside["latency_ms"]["p99"]
    return {
        "concurrency": config.concurrency,
        "explanations_in_flight": config.explanations,
        "num_samples": config.num_samples,
        "alone": {key: alone[key] for key in ("images_per_s", "latency_ms", "errors")},
        "beside_explanations": {
            key: beside[key] for key in ("images_per_s", "latency_ms", "errors")
        },
        "explanation_statuses": {str(s): answers.count(s) for s in sorted(set(answers))},
        "p99_ratio": round(beside_p99 / alone_p99, 3) if alone_p99 and beside_p99 else None,
    }
