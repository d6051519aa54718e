"""``python -m serving``: check the model repository, then run uvicorn (factory mode).

Exit codes: 0 after a clean stop (SIGTERM or Ctrl+C: in-flight requests finish first),
2 for bad flags, a missing / empty model repository or a bad --api-keys file, 3 if the app
fails to start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from core.modelrepo import ModelRepository
from core.provenance.reader import load_trust_anchors
from serving.app import configure_logging
from serving.auth import KeyFileError, KeyStore
from serving.config import ServerConfig, parse_args
from serving.metrics import MULTIPROCESS_ENV
from serving.models import find_entries
from serving.protocol import ReadLimits, guarded_protocol

FACTORY = "serving.app:create_app_from_env"


def repository_problem(config: ServerConfig) -> str | None:
    """Why the configured repository cannot be served, or None if it has a servable entry."""
    root = config.models_dir
    if not root.is_dir():
        return (
            f"model repository {root} does not exist. Export a model first (make export), "
            "or point --models / DFD_MODELS_DIR at a folder <name>/<version>/model.onnx"
        )
    entries = find_entries(ModelRepository(root), config.latest_only)
    if not entries:
        return (
            f"model repository {root} holds no servable model: expected "
            f"{root}/<name>/<version>/model.onnx with metadata.json (make export writes one)"
        )
    if config.default_model and config.default_model not in {e.name for e in entries}:
        return f"default model {config.default_model!r} is not in {root}"
    return key_file_problem(config)


def key_file_problem(config: ServerConfig) -> str | None:
    """Why the ``--api-keys`` file cannot be used (a bad line is named), or None."""
    if config.api_keys is None:
        return None
    try:
        KeyStore.from_file(config.api_keys)
    except KeyFileError as exc:
        return str(exc)
    return None


def evidence_problem(config: ServerConfig) -> str | None:
    """Why the C2PA trust anchor file cannot be used, or None."""
    if not (config.evidence and config.c2pa_trust_anchors):
        return None
    try:
        load_trust_anchors(config.c2pa_trust_anchors)
    except ValueError as exc:
        return f"--c2pa-trust-anchors / DFD_C2PA_TRUST_ANCHORS: {exc}"
    return None


def _exit_cleanly(signum: int, frame: object) -> None:
    """Uvicorn re-raises the signal it stopped for once it is done; exit 0 at that point."""
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    configure_logging(config.log_level)
    problem = repository_problem(config) or evidence_problem(config)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    os.environ.update(config.to_env())  # how uvicorn's worker processes get the config
    with multiprocess_metrics(config.workers):
        return run_uvicorn(config)


@contextlib.contextmanager
def multiprocess_metrics(workers: int) -> Iterator[None]:
    """With several workers, a fresh ``PROMETHEUS_MULTIPROC_DIR`` for their metric files (one
    given in the environment is emptied, as the client library asks), removed afterwards."""
    if workers < 2:
        yield
        return
    given = os.environ.get(MULTIPROCESS_ENV)
    folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="dfd-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROCESS_ENV] = str(folder)
    try:
        yield
    finally:
        if not given:
            shutil.rmtree(folder, ignore_errors=True)


def connection_limits(config: ServerConfig) -> dict:
    """uvicorn's own settings where they suffice (keep-alive, connection cap), our protocol
    (``serving/protocol.py``) for the read deadlines and the head limit uvicorn lacks."""
    limits = ReadLimits(config.header_timeout_s, config.body_timeout_s, config.max_header_bytes)
    return {
        "http": guarded_protocol(limits),
        "timeout_keep_alive": config.keep_alive_timeout_s,
        "limit_concurrency": config.max_connections or None,
    }


def run_uvicorn(config: ServerConfig) -> int:
    import uvicorn

    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    uvicorn.run(
        FACTORY,
        factory=True,
        host=config.host,
        port=config.port,
        workers=config.workers,
        log_level=config.log_level,
        timeout_graceful_shutdown=config.graceful_timeout_s or None,
        server_header=False,
        **connection_limits(config),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
