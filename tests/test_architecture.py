"""The layout's import rules (docs/ARCHITECTURE.md), stated as import-linter contracts in
pyproject.toml and checked here: core imports no other package of the project, and the
server never imports training, export, the dataset build or the benchmarks."""

from __future__ import annotations

import os
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(os.fspath(ROOT))
    assert lint_imports(config_filename="pyproject.toml", no_cache=True) == 0
