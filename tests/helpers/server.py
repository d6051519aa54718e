"""Run the inference server in tests: in-process (httpx + ASGI, lifespan run) or as a real
``python -m serving`` subprocess on a free port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_config(models_dir: Path, **overrides):
    """A ``ServerConfig`` sized for a 2-core test machine (1 ORT thread, warm-up at batch 1)."""
    from serving.config import ServerConfig

    settings = {
        "models_dir": Path(models_dir),
        "intra_op_threads": 1,
        "decode_threads": 2,
        "warmup_batch_sizes": (1,),
        "max_queue_delay_ms": 5.0,
        "request_timeout_s": 20.0,
    }
    return ServerConfig(**{**settings, **overrides})


test_config.__test__ = False  # not a test, despite its name


@contextlib.asynccontextmanager
async def serving_client(config) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    """``(client, app)`` for ``create_app(config)`` with its lifespan started and stopped."""
    from serving.app import create_app

    app = create_app(config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", timeout=60.0
        ) as client:
            yield client, app


async def status_when_client_leaves(
    app, path: str, content_type: str, first_chunk: bytes, on_disconnect=None
) -> int:
    """POST ``first_chunk`` of a body that never ends, then disconnect (calling
    ``on_disconnect`` first): the status ``app`` (lifespan started) answered."""
    sent: list = []

    async def receive():
        if not sent:
            sent.append("body")
            return {"type": "http.request", "body": first_chunk, "more_body": True}
        if on_disconnect is not None:
            on_disconnect()
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
        "query_string": b"", "headers": [(b"content-type", content_type.encode())],
        "scheme": "http", "server": ("t", 80), "client": ("c", 1), "http_version": "1.1",
        "root_path": "",
    }  # fmt: skip
    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
    return next(m for m in sent[1:] if m["type"] == "http.response.start")["status"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``python -m serving`` in a subprocess; use as a context manager (always stopped)."""

    def __init__(self, models_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [
            sys.executable, "-m", "serving", "--models", str(models_dir),
            "--host", "127.0.0.1", "--port", str(self.port), *args,
        ]  # fmt: skip
        clean = {k: v for k, v in os.environ.items() if not k.startswith("DFD_")}
        self.env = {**clean, **(env or {})}
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in __exit__)
            prefix="serving-", suffix=".log", delete=False
        )
        self.process: subprocess.Popen | None = None

    def start(self, ready_timeout_s: float = 60.0) -> ServerProcess:
        self.process = subprocess.Popen(
            self.command, cwd=REPO_ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode}:\n{self.output()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/v2/health/ready", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.1)
        raise TimeoutError(f"server not ready after {ready_timeout_s} s:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, then wait; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)
