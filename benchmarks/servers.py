"""Start a server as a subprocess on a free loopback port, wait until ready, stop it.

Every system under test (our server in each configuration, the Flask baseline) runs in
its own process, apart from the load generator, and only ever listens on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
READY_PATH = "/v2/health/ready"
SERVER_ENV_PREFIX = "DFD_"  # the server's settings variables: only explicit flags count here
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class ServerStartError(RuntimeError):
    """The server exited or did not become ready in time (the message holds its log tail)."""


@dataclass(frozen=True)
class ServerSpec:
    """How to start one system under test. ``{port}`` and ``{host}`` in argv are filled in."""

    name: str
    argv: tuple[str, ...]
    ready_path: str = READY_PATH
    startup_timeout_s: float = 180.0
    env: dict[str, str] = field(default_factory=dict)
    has_metrics: bool = True
    description: str = ""


def our_server_spec(
    name: str, models: Path, extra_args: tuple[str, ...] = (), description: str = ""
) -> ServerSpec:
    """``python -m serving`` on the given model repository, with extra CLI flags."""
    argv = (
        sys.executable,
        "-m",
        "serving",
        "--models",
        str(models),
        "--host",
        "{host}",
        "--port",
        "{port}",
        *extra_args,
    )
    return ServerSpec(name=name, argv=argv, description=description)


def free_port(host: str = HOST) -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        task_dir = Path(f"/proc/{current}/task")
        if not task_dir.is_dir():
            continue
        for task in task_dir.iterdir():
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            queue.extend(int(child) for child in children)
    return found


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` and its live descendants (Linux /proc), else None."""
    total, seen = 0.0, False
    for member in _descendants(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime
        seen = True
    return total if seen else None


class RunningServer:
    """A started server; use as a context manager so it is always stopped."""

    def __init__(self, spec: ServerSpec, cwd: Path | None = None) -> None:
        self.spec = spec
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.cwd = cwd
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix=f"bench-{spec.name}-", suffix=".log", delete=False
        )
        self.log_path = Path(self._log.name)
        self.process: subprocess.Popen | None = None
        self.startup_s: float | None = None

    def __enter__(self) -> RunningServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        argv = [part.format(host=HOST, port=self.port) for part in self.spec.argv]
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(SERVER_ENV_PREFIX)}
        env = {**inherited, "PYTHONUNBUFFERED": "1", **self.spec.env}
        started = time.perf_counter()
        self.process = subprocess.Popen(
            argv,
            cwd=self.cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = started + self.spec.startup_timeout_s
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise ServerStartError(
                    f"{self.spec.name} exited with {self.process.returncode} before it was "
                    f"ready; log tail:\n{tail}"
                )
            if self._ready():
                self.startup_s = time.perf_counter() - started
                return
            time.sleep(0.2)
        tail = self.log_tail()
        self.stop()
        raise ServerStartError(
            f"{self.spec.name} was not ready within {self.spec.startup_timeout_s:.0f} s; "
            f"log tail:\n{tail}"
        )

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + self.spec.ready_path, timeout=2) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def cpu_seconds(self) -> float | None:
        """CPU seconds the server process tree has used so far."""
        if self.process is None or self.process.poll() is not None:
            return None
        return process_cpu_seconds(self.process.pid)

    def stop(self, grace_s: float = 10.0) -> int | None:
        """SIGTERM (graceful shutdown), then SIGKILL after ``grace_s``; returns the exit code."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(grace_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if not self._log.closed:
            self._log.close()
            self.log_path.unlink(missing_ok=True)
        return process.returncode if process is not None else None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the server printed (empty once it has been stopped)."""
        if self._log.closed:
            return ""
        self._log.flush()
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])
