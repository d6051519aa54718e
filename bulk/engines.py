"""The engines that turn batches of paths into result rows.

* ``local``: a pool of worker processes, each with one onnxruntime session (``Scorer``);
* ``http``: a client of a running server (``POST /v1/predict`` per image,
  ``POST /v1/predict/video`` per video), bounded concurrency, waiting out 503 + Retry-After;
* ``ray``: see :mod:`bulk.ray_engine`.

Each yields one list of rows per batch, in input order.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from urllib.parse import urlsplit

from bulk.scorer import ModelChoice, Scorer, is_video
from core.options import check_at_least, check_positive
from core.video import Sampling

_WORKER_SCORER: Scorer | None = None  # one per worker process, made by the pool initializer


def _start_worker(choice: ModelChoice) -> None:
    global _WORKER_SCORER
    _WORKER_SCORER = Scorer(choice)


def _score_in_worker(paths: list[str]) -> list[dict]:
    assert _WORKER_SCORER is not None
    return _WORKER_SCORER.score(paths)


def local_engine(
    batches: Iterable[list[str]], choice: ModelChoice, workers: int
) -> Iterator[list[dict]]:
    """Score batches in ``workers`` processes (one session each, one intra-op thread each)."""
    if workers == 1:
        scorer = Scorer(choice)
        yield from (scorer.score(batch) for batch in batches)
        return
    context = get_context("spawn")  # no forked onnxruntime or OpenCV state
    with context.Pool(workers, initializer=_start_worker, initargs=(choice,)) as pool:
        yield from pool.imap(_score_in_worker, batches)


@dataclass(frozen=True)
class HttpSettings:
    """A running server and how hard to push it."""

    url: str
    concurrency: int = 8
    timeout_s: float = 60.0
    max_retries: int = 20
    model: str | None = None
    version: int | None = None
    video_sampling: Sampling = Sampling()

    def __post_init__(self) -> None:
        check_at_least(self, 1, "concurrency", "max_retries")
        check_positive(self, "timeout_s")


def post_file(settings: HttpSettings, path: str) -> dict:
    """One file through ``POST /v1/predict`` (a video through ``/v1/predict/video``); 503 is
    retried after its Retry-After."""
    row: dict = {"path": path}
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return row | {"error_code": "unreadable", "error_message": str(exc)}
    row["sha256"] = hashlib.sha256(data).hexdigest()
    parts = urlsplit(settings.url)
    video = is_video(path)
    chosen = {"model": settings.model, "version": settings.version}
    if video:
        chosen |= settings.video_sampling.summary()
    query = "&".join(f"{key}={value}" for key, value in chosen.items() if value is not None)
    target = ("/v1/predict/video" if video else "/v1/predict") + (f"?{query}" if query else "")
    for _ in range(settings.max_retries):
        connection = http.client.HTTPConnection(
            parts.hostname, parts.port, timeout=settings.timeout_s
        )
        try:
            connection.request("POST", target, data, {"Content-Type": "application/octet-stream"})
            answer = connection.getresponse()
            body = json.loads(answer.read() or b"{}")
        finally:
            connection.close()
        if answer.status == 503:
            time.sleep(float(answer.getheader("Retry-After") or 1))
            continue
        if answer.status == 200:
            keep = ("label", "probability_fake", "confidence", "model", "version", "evidence")
            keep += ("face", "faces")
            row |= {key: body[key] for key in keep if key in body}
            if video:
                row |= {"frames": len(body["frames"]), "frame_results": body["frames"]}
            return row
        error = body.get("error", {})
        return row | {"error_code": error.get("code", str(answer.status)),
                      "error_message": error.get("message", "")}  # fmt: skip
    return row | {"error_code": "unavailable", "error_message": "server kept answering 503"}


def http_engine(batches: Iterable[list[str]], settings: HttpSettings) -> Iterator[list[dict]]:
    """Score batches through a running server, ``settings.concurrency`` requests at a time."""
    with ThreadPoolExecutor(settings.concurrency, thread_name_prefix="bulk-http") as pool:
        for batch in batches:
            yield list(pool.map(lambda path: post_file(settings, path), batch))
