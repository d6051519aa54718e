"""Graceful shutdown under load: SIGTERM while several clients keep a real server busy.

``tests/test_serving_process.py`` covers one slow request in flight at SIGTERM. This
extends it to sustained load: every request the server had accepted (queued, running, or
still uploading its body) completes with its own correct 200, requests made after the
signal are refused (connection refused, or 503 if one slips in), nothing hangs or gets a
500, and the process exits 0 soon after the last answer.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
from helpers import ServerProcess, TinyModelSpec, distinct_pngs, write_model_entry
from reliability_cases import INPUT_SIZE, MODEL, SERVER_ARGS, Reference
from reliability_http import Answer, async_request

SLOW_MODEL = TinyModelSpec(size=INPUT_SIZE, slow_matmuls=16, slow_dim=768)  # ~0.2 s per run
CLIENTS = 8
SETTLE_S = 0.5  # a request sent this long before SIGTERM has surely been accepted and read
GRACE_S = 0.5  # a request sent this long after SIGTERM surely meets a closed socket


async def _closed_loop(port: int, images: list[bytes], first: int, log: list, stop: asyncio.Event):
    """Send requests one after another until refused; log (sent_at, image index, outcome)."""
    index = first
    while not stop.is_set():
        sent_at = time.monotonic()
        data = images[index % len(images)]
        try:
            outcome: Answer | Exception = await async_request(
                port, "POST", "/v1/predict", data, {"Content-Type": "image/png"}, 30.0
            )
        except (TimeoutError, OSError) as exc:
            outcome = exc
        log.append((sent_at, index % len(images), outcome))
        if not isinstance(outcome, Answer) or outcome.status != 200:
            return
        index += CLIENTS


def _start_slow_upload(port: int, data: bytes) -> socket.socket:
    """Headers and the first half of a PNG upload; the rest is sent after SIGTERM."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode()  # fmt: skip
    sock.sendall(head + data[: len(data) // 2])
    return sock


def _finish_slow_upload(sock: socket.socket, data: bytes) -> bytes:
    with sock:
        sock.sendall(data[len(data) // 2 :])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_sigterm_under_load_finishes_accepted_work_refuses_new_and_exits_0(tmp_path):
    root = tmp_path / "models"
    write_model_entry(root, MODEL, 1, SLOW_MODEL)
    images = distinct_pngs(32)
    expected = Reference(root).probabilities(images)
    slow_upload_image = images[5]
    args = (*SERVER_ARGS, "--max-batch-size", "2", "--max-queue-size", "64",
            "--graceful-timeout-s", "30")  # fmt: skip
    with ServerProcess(root, *args) as server:

        async def scenario():
            log: list = []
            stop = asyncio.Event()
            clients = [asyncio.create_task(_closed_loop(server.port, images, i, log, stop))
                       for i in range(CLIENTS)]  # fmt: skip
            await asyncio.sleep(1.5)  # sustained load, queue full of work
            upload = await asyncio.to_thread(_start_slow_upload, server.port, slow_upload_image)
            await asyncio.sleep(SETTLE_S)
            sigterm_at = time.monotonic()
            server.process.terminate()  # SIGTERM
            await asyncio.sleep(0.2)
            upload_answer = await asyncio.to_thread(_finish_slow_upload, upload, slow_upload_image)
            await asyncio.sleep(GRACE_S)
            late = []
            for index in range(4):  # fresh clients well after the signal
                try:
                    late.append(await async_request(server.port, "POST", "/v1/predict",
                                                    images[index], {"Content-Type": "image/png"},
                                                    10.0))  # fmt: skip
                except (TimeoutError, OSError) as exc:
                    late.append(exc)
            async with asyncio.timeout(40):
                await asyncio.gather(*clients)
            stop.set()
            return log, sigterm_at, upload_answer, late

        log, sigterm_at, upload_answer, late = asyncio.run(scenario())
        exit_code = server.process.wait(timeout=40)
        exited_after_s = time.monotonic() - sigterm_at
        output = server.output()

    assert exit_code == 0, output
    assert "Traceback" not in output, output[-3000:]
    accepted_before = [(i, o) for sent, i, o in log if sent < sigterm_at - SETTLE_S]
    assert len(accepted_before) >= CLIENTS  # there really was load
    in_flight_at_sigterm = 0
    for _, index, outcome in log:
        if isinstance(outcome, Answer):
            assert outcome.status in (200, 503), (outcome.status, outcome.body[:200])
            if outcome.status == 200:
                got = outcome.json()["probability_fake"]
                assert got == pytest.approx(expected[index], abs=1e-5), index
            else:
                assert outcome.error()["code"] == "shutting_down"
    for sent, _, outcome in log:
        if sent < sigterm_at - SETTLE_S:  # accepted before the signal: must complete
            assert isinstance(outcome, Answer) and outcome.status == 200, outcome
        if sent < sigterm_at and isinstance(outcome, Answer) and outcome.status == 200:
            in_flight_at_sigterm += outcome.seconds > sigterm_at - sent  # answered after it
    assert in_flight_at_sigterm >= 1, "no request was in flight at SIGTERM; the test is void"
    status_line = upload_answer.split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 200 OK", upload_answer[:300]
    body = json.loads(upload_answer.split(b"\r\n\r\n", 1)[1])
    assert body["probability_fake"] == pytest.approx(expected[5], abs=1e-5)  # its own answer
    for outcome in late:
        refused = isinstance(outcome, OSError)
        assert refused or outcome.status == 503, outcome
    assert exited_after_s < 30, exited_after_s
