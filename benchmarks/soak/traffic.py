"""The client loop: keep-alive clients sending the mix, and the judge that counts answers."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from benchmarks.rawhttp import RawHttpConnection
from benchmarks.soak.config import SoakConfig
from benchmarks.soak.mix import Kind


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

    def note(self, problem: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(problem)


async def _send(connection, kind: Kind, timeout_s: float) -> tuple[int | None, bytes]:
    try:
        async with asyncio.timeout(timeout_s):
            return await connection.request(kind.method, kind.path, kind.body, kind.content_type)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
        await connection.close()  # never reuse a connection whose answer may still arrive
        return None, b""


def _judge(kind: Kind, status: int | None, payload: bytes, seconds: float, tally: Tally) -> None:
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
    connection: RawHttpConnection, kind: Kind, timeout_s: float, tally: Tally
) -> None:
    """One request, timed and judged."""
    started = time.perf_counter()
    status, payload = await _send(connection, kind, timeout_s)
    _judge(kind, status, payload, time.perf_counter() - started, tally)


async def _client(
    base_url: str, kinds: list[Kind], config: SoakConfig, worker: int, deadline: float, tally: Tally
) -> None:
    rng = random.Random(config.seed * 1000 + worker)
    good = [kind for kind in kinds if kind.good]
    bad = [kind for kind in kinds if not kind.good]
    connection = RawHttpConnection(base_url)
    try:
        while time.monotonic() < deadline:
            pool = bad if rng.random() < config.bad_fraction else good
            kind = rng.choices(pool, weights=[k.weight for k in pool])[0]
            await _send_and_judge(connection, kind, config.request_timeout_s, tally)
    finally:
        await connection.close()


async def _traffic(
    base_url: str, kinds: list[Kind], config: SoakConfig, seconds: float, tally: Tally
) -> None:
    deadline = time.monotonic() + seconds
    await asyncio.gather(
        *(
            _client(base_url, kinds, config, worker, deadline, tally)
            for worker in range(config.concurrency)
        )
    )


async def _prime(base_url: str, kinds: list[Kind], config: SoakConfig, tally: Tally) -> None:
    """Every kind once, so lazily loaded code paths are warm before the memory baseline."""
    connection = RawHttpConnection(base_url)
    try:
        for kind in kinds:
            await _send_and_judge(connection, kind, config.request_timeout_s, tally)
    finally:
        await connection.close()
