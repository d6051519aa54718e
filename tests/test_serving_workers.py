"""``--workers N``: several processes share the port, and ``/metrics`` sums all of them."""

from __future__ import annotations

import itertools
import os
import shutil
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.servers import RunningServer, ServerSpec, our_server_spec
from core.preprocessing import encode_jpeg
from serving.config import ServerConfig

WORKERS = 2
MAX_REQUESTS = 240  # sent until every worker has answered some (usually the first batch)


def predict_count(text: str) -> float:
    """``dfd_http_requests_total`` of the predict route with status 200, from exposition text."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "dfd_http_requests_total"
                and sample.labels.get("route") == "predict"
                and sample.labels.get("status") == "200"
            ):
                total += sample.value
    return total


def per_worker_counts(folder: Path, scratch: Path) -> dict[str, float]:
    """Predict requests answered by each worker process, read from its own counter file."""
    counts = {}
    for path in sorted(folder.glob("counter_*.db")):
        alone = scratch / path.stem
        alone.mkdir(parents=True)
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        counts[path.stem.removeprefix("counter_")] = predict_count(
            generate_latest(registry).decode()
        )
    return counts


def counted(folder: Path, scratch: Path, sent: int, wait_s: float = 5.0) -> dict[str, float]:
    """Per-worker counts once they add up to ``sent``: a request is counted by the metrics
    middleware just after its answer went out, so the last few may lag the client a little."""
    deadline = time.monotonic() + wait_s
    for attempt in itertools.count():
        workers = per_worker_counts(folder, scratch / str(attempt))
        if sum(workers.values()) >= sent or time.monotonic() > deadline:
            return workers
        time.sleep(0.05)
    raise AssertionError("unreachable")


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, body, {"Content-Type": "image/jpeg"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:  # a new connection each time
        return answer.status


def test_every_worker_serves_and_metrics_sum_all_of_them(tiny_repo: Path, tmp_path: Path):
    folder = tmp_path / "prometheus"
    base = our_server_spec(
        "workers", tiny_repo,
        ("--workers", str(WORKERS), "--decode-threads", "2", "--webui", "",
         "--log-level", "warning", "--warmup-batch-sizes", "1"),
    )  # fmt: skip
    spec = ServerSpec(
        name=base.name, argv=base.argv, env={"PROMETHEUS_MULTIPROC_DIR": str(folder)},
        startup_timeout_s=120.0,
    )  # fmt: skip
    body = encode_jpeg(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    sent = 0
    with RunningServer(spec) as server, ThreadPoolExecutor(8) as pool:
        url = server.base_url + "/v1/predict"
        while sent < MAX_REQUESTS:
            statuses = list(pool.map(lambda _: post(url, body), range(24)))
            assert statuses == [200] * 24
            sent += 24
            workers = counted(folder, tmp_path / f"scratch{sent}", sent)
            if len(workers) == WORKERS and all(count > 0 for count in workers.values()):
                break
        with urllib.request.urlopen(server.base_url + "/metrics", timeout=10) as answer:
            exposition = answer.read().decode()
    assert len(workers) == WORKERS and all(count > 0 for count in workers.values()), workers
    assert sum(workers.values()) == sent
    assert predict_count(exposition) == sent  # any worker's /metrics counts the whole server


def test_thread_budgets_are_shared_out_among_workers():
    one = ServerConfig(workers=1, decode_threads=4, intra_op_threads=0)
    assert (one.worker_decode_threads, one.worker_intra_op_threads) == (4, 0)
    two = ServerConfig(workers=2, decode_threads=4, intra_op_threads=6)
    assert (two.worker_decode_threads, two.worker_intra_op_threads) == (2, 3)
    many = ServerConfig(workers=8, decode_threads=4, intra_op_threads=2)
    assert (many.worker_decode_threads, many.worker_intra_op_threads) == (1, 1)
    cores = os.cpu_count() or 1
    assert ServerConfig().worker_decode_threads == cores, "0: one decode thread per core"
    assert ServerConfig(workers=2).worker_decode_threads == max(1, cores // 2)


def test_accepted_connections_get_tcp_nodelay():
    """uvicorn's shared socket for --workers has proto 0, so asyncio leaves Nagle on; the
    server's protocol switches it off on every connection (c=1 went from 64 to 21 ms)."""
    import socket

    from serving.protocol import set_nodelay

    class Transport:
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def get_extra_info(self, name: str):
            return self.sock if name == "socket" else None

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:  # proto 0, as uvicorn
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        with socket.create_connection(listener.getsockname()):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
                set_nodelay(Transport(accepted))
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
