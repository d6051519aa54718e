"""The client loop: keep-alive clients sending the mix, and the judge that counts answers."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from benchmarks.rawhttp import RawHttpConnection
from drills.soak.config import SoakConfig
from drills.soak.mix import Kind


@dataclass
class Tally:
    """Everything counted during the run."""

    sent: Counter = field(default_factory=Counter)  # by kind
    statuses: Counter = field(default_factory=Counter)  # by status ("none": no answer)
    lost: int = 0
    mismatched: int = 0
    unexpected: int = 0
    server_errors: int = 0
    good: int = 0
    bad: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    flood: Counter = field(default_factory=Counter)  # the flooding client's answers by status

    def note(self, problem: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(problem)


WRONG_KEY = "dfd_not-a-key-of-this-server"


def _auth_headers(kind: Kind, key: str | None) -> dict[str, str]:
    """The Authorization header ``kind`` asks for, given the client's own key (or None)."""
    chosen = {"client": key, "none": None, "wrong": WRONG_KEY}[kind.auth]
    return {"Authorization": f"Bearer {chosen}"} if chosen else {}


async def _send(
    connection, kind: Kind, timeout_s: float, key: str | None = None
) -> tuple[int | None, bytes]:
    headers = _auth_headers(kind, key)
    try:  # a failed request closes its connection: no late answer is read as the next one
        return await connection.request(
            kind.method, kind.path, kind.body, kind.content_type, headers, timeout_s
        )
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
        return None, b""


def judge(kind: Kind, status: int | None, payload: bytes, seconds: float, tally: Tally) -> None:
    tally.sent[kind.name.split(" #")[0]] += 1  # one count per kind, not per image
    tally.statuses[str(status) if status is not None else "none"] += 1
    if status is not None and status >= 500:
        tally.server_errors += 1
    if not kind.good:
        tally.bad += 1
        if status != kind.expected:
            tally.unexpected += 1
            tally.note(f"{kind.name}: status {status}, expected {kind.expected}")
        return
    tally.good += 1
    if status != 200:
        tally.lost += 1
        tally.note(f"{kind.name}: lost (status {status})")
        return
    tally.latencies_ms.append(seconds * 1000.0)
    if kind.check is None:
        return
    try:
        problem = kind.check(json.loads(payload))
    except (ValueError, AttributeError, TypeError) as exc:
        problem = f"unreadable answer: {exc}"
    if problem:
        tally.mismatched += 1
        tally.note(f"{kind.name}: {problem}")


async def _send_and_judge(
    connection: RawHttpConnection, kind: Kind, timeout_s: float, tally: Tally, key: str | None
) -> None:
    """One request, timed and judged."""
    started = time.perf_counter()
    status, payload = await _send(connection, kind, timeout_s, key)
    judge(kind, status, payload, time.perf_counter() - started, tally)


async def _paced(rate: float, deadline: float):
    """Yield until ``deadline``: at once without a rate, else every 1/rate s (no catching up)."""
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        yield
        if rate > 0:
            next_at = max(next_at + 1.0 / rate, time.monotonic() - 1.0 / rate)
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def _client(
    base_url: str, kinds: list[Kind], config: SoakConfig, worker: int, deadline: float,
    tally: Tally, keys: Keys,
) -> None:  # fmt: skip
    rng = random.Random(config.seed * 1000 + worker)
    good = [kind for kind in kinds if kind.good]
    bad = [kind for kind in kinds if not kind.good]
    connection = RawHttpConnection(base_url)
    key = keys.client(worker)
    try:
        async for _ in _paced(config.client_rate if config.access else 0.0, deadline):
            pool = bad if rng.random() < config.bad_fraction else good
            kind = rng.choices(pool, weights=[k.weight for k in pool])[0]
            await _send_and_judge(connection, kind, config.request_timeout_s, tally, key)
    finally:
        await connection.close()


async def _flood(
    base_url: str, config: SoakConfig, deadline: float, tally: Tally, key: str
) -> None:
    """A client over its rate limit (cheap listings at ``flood_rate``): 200 or 429 only."""
    connection = RawHttpConnection(base_url)
    headers = {"Authorization": f"Bearer {key}"}
    try:
        async for _ in _paced(config.flood_rate, deadline):
            try:
                async with asyncio.timeout(config.request_timeout_s):
                    status, _ = await connection.request("GET", "/v1/models", headers=headers)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                await connection.close()
                status = None
            tally.flood[str(status)] += 1
    finally:
        await connection.close()


async def run_traffic(
    base_url: str, kinds: list[Kind], config: SoakConfig, seconds: float, tally: Tally,
    keys: Keys,
) -> None:  # fmt: skip
    deadline = time.monotonic() + seconds
    clients = [
        _client(base_url, kinds, config, worker, deadline, tally, keys)
        for worker in range(config.concurrency)
    ]
    if keys.flooder is not None:
        clients.append(_flood(base_url, config, deadline, tally, keys.flooder))
    await asyncio.gather(*clients)


async def prime(
    base_url: str, kinds: list[Kind], config: SoakConfig, tally: Tally, keys: Keys
) -> None:
    """Every kind once, so lazily loaded code paths are warm before the memory baseline."""
    connection = RawHttpConnection(base_url)
    pending = iter(kinds)
    try:  # paced under the rate limit when it is on
        async for _ in _paced(config.rate / 2 if config.access else 0.0, float("inf")):
            kind = next(pending, None)
            if kind is None:
                return
            await _send_and_judge(connection, kind, config.request_timeout_s, tally, keys.client(0))
    finally:
        await connection.close()


@dataclass(frozen=True)
class Keys:
    """The soak's API keys: one per good client and one for the flooder (none: keys off)."""

    clients: tuple[str, ...] = ()
    flooder: str | None = None

    def client(self, worker: int) -> str | None:
        return self.clients[worker % len(self.clients)] if self.clients else None
