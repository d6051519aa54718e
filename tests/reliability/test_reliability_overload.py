"""Overload: a real server with a slow model and a small queue, offered about 10x what it can
absorb. Excess requests get a quick 503 + Retry-After, accepted ones get their own correct
answer, nothing hangs past its timeout, the queue drains and the server is ready again.

(``tests/test_serving_batching.py`` checks queue-full 503s in process with 8 requests; this
is sustained open-loop load over real sockets.)"""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest
from helpers import ServerProcess, TinyModelSpec, distinct_pngs, write_model_entry
from reliability_cases import INPUT_SIZE, MODEL, SERVER_ARGS, Reference
from reliability_http import Answer, async_request, request

SLOW_MODEL = TinyModelSpec(size=INPUT_SIZE, slow_matmuls=16, slow_dim=768)  # ~0.2 s per run
MAX_BATCH, MAX_QUEUE, REQUEST_TIMEOUT_S = 2, 4, 8.0
OVERLOAD = 10  # offered rate / measured capacity
LOAD_SECONDS = 3.0
CLIENT_TIMEOUT_S = REQUEST_TIMEOUT_S + 10.0  # a request still unanswered by then "hung"


def queue_depth(port: int) -> float:
    text = request(port, "GET", "/metrics").body.decode()
    prefix = f'dfd_queue_depth_rows{{model="{MODEL}",version="1"}} '
    return float(next(line for line in text.splitlines() if line.startswith(prefix)).split()[-1])


async def offer_load(port: int, images: list[bytes], rate: float, seconds: float):
    """Open loop: a new independent request every 1/rate s for ``seconds``, whatever happens
    to earlier ones. Returns ``[(image index, Answer or exception)]``."""

    async def one(index: int):
        data = images[index % len(images)]
        try:
            headers = {"Content-Type": "image/png"}
            answer = await async_request(
                port, "POST", "/v1/predict", data, headers, CLIENT_TIMEOUT_S
            )
        except (TimeoutError, OSError) as exc:
            return index, exc
        return index, answer

    tasks = []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        tasks.append(asyncio.create_task(one(len(tasks))))
        await asyncio.sleep(max(0.0, len(tasks) / rate - (time.perf_counter() - started)))
    return await asyncio.gather(*tasks)


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("overload") / "models"
    write_model_entry(root, MODEL, 1, SLOW_MODEL)
    args = (*SERVER_ARGS, "--max-batch-size", str(MAX_BATCH), "--max-queue-size", str(MAX_QUEUE),
            "--max-queue-delay-ms", "2", "--request-timeout-s", str(REQUEST_TIMEOUT_S))  # fmt: skip
    with ServerProcess(root, *args) as server:
        yield server, Reference(root)


def test_ten_times_overload_sheds_quickly_answers_correctly_and_recovers(slow_server):
    server, reference = slow_server
    images = distinct_pngs(40)
    expected = reference.probabilities(images)
    # capacity: the slow model answers MAX_BATCH rows per run; time one run as the server sees it
    single = [request(server.port, "POST", "/v1/predict", images[0], {"Content-Type": "image/png"})
              for _ in range(3)]  # fmt: skip
    run_s = min(answer.seconds for answer in single)
    capacity = MAX_BATCH / run_s
    rate = min(OVERLOAD * capacity, 250.0)

    results = asyncio.run(offer_load(server.port, images, rate, LOAD_SECONDS))

    hung = [index for index, answer in results if not isinstance(answer, Answer)]
    assert hung == [], f"{len(hung)} requests got no answer: {results[hung[0]][1]!r}"
    answers = [(index, answer) for index, answer in results]
    statuses = [answer.status for _, answer in answers]
    assert set(statuses) <= {200, 503, 504}, sorted(set(statuses))
    accepted = [(i, a) for i, a in answers if a.status == 200]
    shed = [a for _, a in answers if a.status == 503]
    offered_per_capacity = len(answers) / (capacity * LOAD_SECONDS)
    summary = (f"offered {len(answers)} at {rate:.0f}/s (~{offered_per_capacity:.0f}x a capacity "
               f"of {capacity:.1f}/s), 200: {len(accepted)}, 503: {len(shed)}, "
               f"504: {statuses.count(504)}")  # fmt: skip
    assert offered_per_capacity > 4, summary
    assert len(shed) > len(answers) / 2, summary  # most of the excess is shed...
    assert len(accepted) >= capacity * LOAD_SECONDS / 4, summary  # ...while work gets done
    for answer in shed:
        assert answer.headers["retry-after"] == "1"
        assert answer.error() is not None and answer.error()["code"] == "queue_full"
    shed_seconds = sorted(answer.seconds for answer in shed)
    assert statistics.median(shed_seconds) < 0.5, summary  # refused without waiting in line
    assert shed_seconds[-1] < REQUEST_TIMEOUT_S, summary
    for index, answer in accepted:
        probability = answer.json()["probability_fake"]
        assert probability == pytest.approx(expected[index % len(images)], abs=1e-5), index
    assert all(a.seconds < CLIENT_TIMEOUT_S for _, a in answers)

    deadline = time.monotonic() + 20
    while queue_depth(server.port) > 0:  # the queue drains
        assert time.monotonic() < deadline, "queue did not drain"
        time.sleep(0.05)
    assert request(server.port, "GET", "/v2/health/ready").status == 200
    after = request(server.port, "POST", "/v1/predict", images[7], {"Content-Type": "image/png"})
    assert after.status == 200
    assert after.json()["probability_fake"] == pytest.approx(expected[7], abs=1e-5)
    metrics = request(server.port, "GET", "/metrics").body.decode()
    rejected = f'dfd_batcher_rejections_total{{model="{MODEL}",reason="queue_full",version="1"}}'
    assert f"{rejected} {float(len(shed))}" in metrics
