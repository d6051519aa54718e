"""The first request after the server sat idle, as a browser sends it (new connection,
multipart form), against the same request sent again right after; at the client and, from
the answer's ``latency_ms``, inside the server (the client process idled too, and its own
first request pays for that)."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np


@dataclass(frozen=True)
class FirstRequestConfig:
    """How long the server idles before the first request, and how many follow it."""

    idle_s: float = 30.0
    repeats: int = 10
    path: str = "/v1/predict"

    def __post_init__(self) -> None:
        if self.idle_s < 0 or self.repeats < 1:
            raise ValueError(
                f"need idle_s >= 0 and repeats >= 1, got {self.idle_s}, {self.repeats}"
            )


def multipart_body(payload: bytes, content_type: str) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body with one ``file`` field, as the web page sends it."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="face.jpg"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + payload + f"\r\n--{boundary}--\r\n".encode(), boundary


def timed_post(
    base_url: str, path: str, body: bytes, boundary: str
) -> tuple[int, float, float | None]:
    """Status, milliseconds at the client and the server's own ``latency_ms`` (None when the
    answer has none) of one POST on a new connection."""
    parts = urlsplit(base_url)
    started = time.perf_counter()
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request(
            "POST", path, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
        answer = connection.getresponse()
        data = answer.read()
    finally:
        connection.close()
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    try:
        server_ms = float(json.loads(data)["latency_ms"])
    except (ValueError, KeyError, TypeError):
        server_ms = None
    return answer.status, elapsed_ms, server_ms


def measure_first_request(
    base_url: str, payload: bytes, content_type: str, config: FirstRequestConfig
) -> dict:
    """Sleep ``idle_s``, time one multipart upload, then ``repeats`` more right after it."""
    body, boundary = multipart_body(payload, content_type)
    time.sleep(config.idle_s)
    status, first_ms, first_server_ms = timed_post(base_url, config.path, body, boundary)
    after = [timed_post(base_url, config.path, body, boundary) for _ in range(config.repeats)]
    statuses = [status, *(s for s, _, _ in after)]
    following_server = [ms for _, _, ms in after if ms is not None]
    return {
        "idle_s": config.idle_s,
        "first_ms": round(first_ms, 2),
        "following_ms_p50": round(float(np.median([ms for _, ms, _ in after])), 2),
        # the server's own part (its latency_ms: route handler, not the connection or client)
        "first_server_ms": first_server_ms,
        "following_server_ms_p50": (
            round(float(np.median(following_server)), 2) if following_server else None
        ),
        "statuses": sorted(set(statuses)),
    }
