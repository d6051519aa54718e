"""The layout's import rules (docs/ARCHITECTURE.md), stated as import-linter contracts in
pyproject.toml and checked here: core imports no other package of the project, the server
never imports training, export, the dataset build, the benchmarks or the drills, the
benchmarks never import the drills, and no package's modules import each other in a circle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold():
    """Run in a process of its own: import-linter configures logging for the whole process,
    which would silence other tests' captured logs."""
    command = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout
