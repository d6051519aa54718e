"""Fixtures of the reliability suite: one real ``python -m serving`` (uvicorn on a free
loopback port) with the tiny model, shared by the tests that leave it healthy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import ServerProcess
from reliability_cases import SERVER_ARGS, Reference, write_repository


@pytest.fixture(scope="session")
def reliability_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_repository(tmp_path_factory.mktemp("reliability") / "models")


@pytest.fixture(scope="session")
def reference(reliability_repo: Path) -> Reference:
    return Reference(reliability_repo)


@pytest.fixture(scope="session")
def live_server(reliability_repo: Path) -> Iterator[ServerProcess]:
    """A real server that the hostile-input and fuzz tests share (they must leave it healthy)."""
    with ServerProcess(reliability_repo, *SERVER_ARGS) as server:
        yield server
        assert server.process is not None and server.process.poll() is None, server.output()
