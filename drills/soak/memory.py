"""The server's resident memory (psutil, else ``/proc/<pid>/status`` VmRSS), sampled."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from benchmarks.servers import _descendants


def rss_mb(pid: int) -> tuple[float | None, str]:
    """Resident memory of ``pid`` and its descendants in MB, and how it was measured."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            root = psutil.Process(pid)
            processes = [root, *root.children(recursive=True)]
            return sum(p.memory_info().rss for p in processes) / 2**20, "psutil"
        except psutil.Error:
            return None, "psutil"
    total, seen = 0, False
    for member in _descendants(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    seen = True
        except OSError:
            continue
    return (total / 2**20 if seen else None), "/proc/<pid>/status VmRSS"


class MemorySampler(threading.Thread):
    """Samples the server's RSS every ``every_s`` seconds until stopped."""

    def __init__(self, pid: int, every_s: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, float]] = []
        self.source = ""
        self._stop_event = threading.Event()
        self._t0 = time.monotonic()

    def sample(self) -> float | None:
        value, self.source = rss_mb(self.pid)
        if value is not None:
            self.samples.append((round(time.monotonic() - self._t0, 2), round(value, 1)))
        return value

    def run(self) -> None:
        while not self._stop_event.wait(self.every_s):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
