"""Slow and greedy clients against a real server (serving/protocol.py): a request head or
body sent a byte at a time is cut off at its deadline with the connection closed, an idle
connection too, a client slow but within the deadline is served, a request head growing past
``--max-header-bytes`` gets 400, pipelined requests are answered, and the server keeps
answering.

(The 500-connection attack with good clients measured alongside is a benchmark:
``python -m drills slowloris``.)"""

from __future__ import annotations

import http.client
import select
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import ServerProcess
from reliability_cases import SERVER_ARGS
from reliability_http import request

HEADER_TIMEOUT_S, BODY_TIMEOUT_S = 1.0, 1.5
MAX_HEAD_BYTES = 4096
DRIP_S = 0.1  # one byte every DRIP_S seconds
SLACK_S = 1.0  # scheduling slack on 2 busy cores
HEAD = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n"


def trickle(
    port: int, first: bytes, drip: bytes, chunk: int = 1, limit_s: float = 10.0
) -> tuple[float, bytes]:
    """Send ``first``, then ``drip`` ``chunk`` bytes every DRIP_S s until the server closes
    the connection; returns (seconds from connecting to the close, what the server sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    started, received = time.monotonic(), b""
    try:
        sock.sendall(first)
        for index in range(int(limit_s / DRIP_S)):
            readable, _, _ = select.select([sock], [], [], DRIP_S)
            if readable:
                answer = sock.recv(65536)
                if not answer:
                    return time.monotonic() - started, received
                received += answer
            if index * chunk < len(drip):
                sock.sendall(drip[index * chunk : (index + 1) * chunk])
    except (ConnectionResetError, BrokenPipeError):
        return time.monotonic() - started, received
    finally:
        sock.close()
    raise AssertionError(f"still open after {limit_s} s; received {received[:200]!r}")


@pytest.fixture(scope="module")
def server(reliability_repo):
    args = (*SERVER_ARGS, "--header-timeout-s", str(HEADER_TIMEOUT_S),
            "--body-timeout-s", str(BODY_TIMEOUT_S),
            "--max-header-bytes", str(MAX_HEAD_BYTES))  # fmt: skip
    with ServerProcess(reliability_repo, *args) as process:
        yield process


def test_slow_header_slow_body_and_idle_clients_are_cut_off_at_the_deadline(server):
    endless_header = b"X-Slow: " + b"a" * 1000
    body_head = (b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                 b"Content-Length: 5000\r\n\r\n")  # fmt: skip
    cases = {
        "slow header": (HEAD, endless_header),
        "slow body": (body_head, b"\x89PNG" + b"\0" * 1000),
        "idle, no bytes": (b"", b""),
        "request line only": (b"", b"GET /v1/models HTTP/1.1\r\n" + b"X" * 1000),
    }
    with ThreadPoolExecutor(len(cases)) as pool:
        futures = {name: pool.submit(trickle, server.port, *args) for name, args in cases.items()}
        outcomes = {name: future.result() for name, future in futures.items()}
    for name, (seconds, received) in outcomes.items():
        deadline = BODY_TIMEOUT_S if name == "slow body" else HEADER_TIMEOUT_S
        assert deadline - 0.05 <= seconds <= deadline + SLACK_S, (name, seconds)
        assert received == b"", (name, received)  # closed, nothing half-answered
    assert request(server.port, "GET", "/v2/health/ready").status == 200


def test_slow_but_in_time_client_is_served_and_keep_alive_restarts_the_deadline(server):
    head = HEAD + b"Accept: application/json\r\n\r\n"
    chunk = -(-len(head) // 6)  # the head in 6 pieces, DRIP_S apart: 0.6 s < the deadline
    seconds, received = trickle(server.port, b"", head + b"GET /v1/models", chunk=chunk)
    assert received.startswith(b"HTTP/1.1 200 OK\r\n"), received[:100]
    # the second request, started right after the answer, is cut off HEADER_TIMEOUT_S after
    # that answer (not after its own first byte, and not never)
    first_answer_s = 5 * DRIP_S
    assert first_answer_s + HEADER_TIMEOUT_S - 0.05 <= seconds, seconds
    assert seconds <= first_answer_s + HEADER_TIMEOUT_S + SLACK_S, seconds


def test_normal_requests_are_not_affected(server):
    answers = [request(server.port, "GET", "/v1/models") for _ in range(5)]
    assert [answer.status for answer in answers] == [200] * 5


def read_until_closed(sock: socket.socket, limit_s: float = 5.0) -> bytes:
    sock.settimeout(limit_s)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_request_head_growing_past_the_limit_gets_400_and_the_connection_closes(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(HEAD + b"X-Big: " + b"a" * (MAX_HEAD_BYTES + 100))  # no end of head
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:100]
    assert answer.endswith(b"Request head too large."), answer[-100:]
    assert request(server.port, "GET", "/v2/health/ready").status == 200


def test_heads_under_the_limit_are_served_one_after_another_on_one_connection(server):
    # each head is under the limit, together they are over it: the count starts per request
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        statuses = []
        for _ in range(4):
            connection.request("GET", "/v1/models", headers={"X-Big": "a" * (MAX_HEAD_BYTES // 2)})
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
    finally:
        connection.close()
    assert statuses == [200] * 4


def test_pipelined_requests_are_answered_in_order_and_the_connection_stays_open(server):
    targets = ("/v1/models", "/v2/health/live", "/v2")
    heads = [f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n" for target in targets]
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall("".join(heads).encode())  # three requests in one write
        received = b""
        while received.count(b"HTTP/1.1 200 OK") < 3:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {received.count(b'HTTP/1.1 200 OK')} answers"
            received += chunk
        time.sleep(HEADER_TIMEOUT_S / 2)  # within the head deadline that the answers restarted
        sock.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        received += read_until_closed(sock)
    answers = received.split(b"HTTP/1.1 200 OK")[1:]
    assert len(answers) == 4, received[:300]
    markers = (b'"default"', b'"live"', b'"extensions"', b'"ready"')
    for answer, marker in zip(answers, markers, strict=True):
        assert marker in answer, (marker, answer[:200])  # in the order they were sent
