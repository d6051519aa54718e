"""Slow-header clients ("slowloris") in their own process, for the soak and the slowloris
benchmark.

Each of ``connections`` clients opens a connection, sends a request line and one header
line, then one more header byte every ``drip_s`` seconds, never finishing the head. When
the server closes the connection the client notes how long it was held and reconnects at
once, so about ``connections`` stay open all the time. They run in a separate process (own
event loop, own CPU time) so the good clients' latency measures the server, not a client
loop crowded by hundreds of attackers.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import statistics
import time
from dataclasses import dataclass

from core.options import check_at_least, check_positive

HEAD = b"GET /v1/models HTTP/1.1\r\nHost: slowloris\r\nX-Slow: "
RAMP_S = 2.0  # the first connections are spread over this long


@dataclass(frozen=True)
class SlowClientSettings:
    host: str
    port: int
    connections: int
    drip_s: float = 1.0

    def __post_init__(self) -> None:
        check_at_least(self, 1, "connections")
        check_positive(self, "drip_s")


def _running(stop_at: float, shared) -> bool:
    return time.monotonic() < stop_at and not shared["stop"].is_set()


async def _one_client(
    settings: SlowClientSettings, index: int, stop_at: float, shared, lifetimes: list[float]
) -> None:
    await asyncio.sleep(RAMP_S * index / max(1, settings.connections))
    while _running(stop_at, shared):
        try:
            reader, writer = await asyncio.open_connection(settings.host, settings.port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        opened = time.monotonic()
        with shared["open"].get_lock():
            shared["open"].value += 1
        cut_off = await _drip(reader, writer, settings.drip_s, stop_at, shared)
        with shared["open"].get_lock():
            shared["open"].value -= 1
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        if cut_off:
            lifetimes.append(time.monotonic() - opened)


async def _drip(reader, writer, drip_s: float, stop_at: float, shared) -> bool:
    """Trickle header bytes until the server closes (True) or the run ends (False)."""
    try:
        writer.write(HEAD)
        while _running(stop_at, shared):
            try:
                data = await asyncio.wait_for(reader.read(4096), drip_s)
            except TimeoutError:
                writer.write(b"a")
                await writer.drain()
                continue
            if not data:
                return True
            # an answer (the server would have to finish the head first): keep reading to EOF
    except (ConnectionError, OSError):
        return True
    return False


def _attack(settings: SlowClientSettings, seconds: float, shared, results) -> None:
    async def main() -> list[float]:
        stop_at = time.monotonic() + seconds
        lifetimes: list[float] = []
        await asyncio.gather(
            *(_one_client(settings, i, stop_at, shared, lifetimes)
              for i in range(settings.connections))
        )  # fmt: skip
        return lifetimes

    results.put(asyncio.run(main()))


class SlowClients:
    """``with SlowClients(settings, seconds) as attack:`` (at most ``seconds``, stopped when
    the block ends); ``attack.open_now()`` samples how many are connected; :meth:`summary`
    (after the block) describes the run."""

    def __init__(self, settings: SlowClientSettings, seconds: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.settings, self.seconds = settings, seconds
        self.shared = {"open": context.Value("i", 0), "stop": context.Event()}
        self.results = context.Queue()
        self.process = context.Process(
            target=_attack, args=(settings, seconds, self.shared, self.results), daemon=True
        )
        self.samples: list[int] = []
        self.lifetimes: list[float] = []

    def __enter__(self) -> SlowClients:
        self.process.start()
        return self

    def open_now(self) -> int:
        value = self.shared["open"].value
        self.samples.append(value)
        return value

    def wait_until_open(self, count: int, timeout_s: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.open_now() >= count:
                return True
            time.sleep(0.1)
        return False

    def __exit__(self, *exc_info: object) -> None:
        self.shared["stop"].set()
        with contextlib.suppress(Exception):
            self.lifetimes = self.results.get(timeout=self.seconds + 60.0)
        self.process.join(timeout=10.0)
        if self.process.is_alive():
            self.process.kill()

    def summary(self) -> dict:
        lifetimes = sorted(self.lifetimes)
        return {
            "connections": self.settings.connections,
            "drip_s": self.settings.drip_s,
            "cut_off_by_server": len(lifetimes),
            "held_s": {
                "median": round(statistics.median(lifetimes), 2) if lifetimes else None,
                "max": round(lifetimes[-1], 2) if lifetimes else None,
            },
            "open_sampled": {
                "min": min(self.samples) if self.samples else None,
                "max": max(self.samples) if self.samples else None,
            },
        }
