"""Shared pytest fixtures. Each section belongs to the stage named in its header.

Helpers that are plain functions live in ``tests/helpers/`` (import ``from helpers import ...``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

# --- serving (tiny ONNX models, model repositories, test images) ---------------------------
from helpers import TinyModelSpec, write_model_entry


@pytest.fixture
def tiny_repo(tmp_path: Path) -> Path:
    """A model repository with ``cnn/1``: the tiny 32x32 model (see helpers/onnx_models.py)."""
    root = tmp_path / "models"
    write_model_entry(root, "cnn", 1, TinyModelSpec(size=32))
    return root


@pytest.fixture
def tiny_face_repo(tmp_path: Path) -> Path:
    """``tiny_repo`` with ``cnn/1`` trained on face crops: the server looks for faces in
    uploads and answers NO_FACE without one."""
    root = tmp_path / "models"
    write_model_entry(root, "cnn", 1, TinyModelSpec(size=32), face_crop=True)
    return root


@pytest.fixture
def model_entry_writer(tmp_path: Path):
    """``write(name="cnn", version=1, **TinyModelSpec fields, threshold=, temperature=)`` into
    a fresh repository; returns the repository root (the same one on every call)."""
    root = tmp_path / "models"

    def write(name: str = "cnn", version: int = 1, threshold: float = 0.5,
              temperature: float = 1.0, **spec: object) -> Path:  # fmt: skip
        write_model_entry(root, name, version, TinyModelSpec(**spec), threshold, temperature)
        return root

    return write
