"""``python -m export.tensorrt``: the no-TensorRT path for real, engine builds where possible.

Entries here are the tiny TensorFlow-free models of ``tests/helpers/onnx_models.py``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import TinyModelSpec, write_model_entry
from onnx import TensorProto, helper

from core.modelrepo import ModelRepository
from core.preprocessing import encode_png
from export.config import ExportError
from export.repository import update_metadata
from export.tensorrt import TensorRTConfig, TensorRTUnavailable, build_plan, onnx_source

ROOT = Path(__file__).resolve().parents[1]
HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
HAS_TRTEXEC = shutil.which("trtexec") is not None
needs_tensorrt = pytest.mark.skipif(
    not HAS_TENSORRT, reason="the tensorrt Python package is not installed (needs an NVIDIA GPU)"
)


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "export.tensorrt", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    write_model_entry(root, "cnn", 1, TinyModelSpec(size=32))
    return root


@pytest.mark.skipif(
    HAS_TENSORRT or HAS_TRTEXEC, reason="TensorRT is installed here: no 'missing' path to test"
)
def test_without_tensorrt_it_explains_and_exits_2(repo: Path):
    before = (repo / "cnn" / "1" / "metadata.json").read_text()
    done = _run_cli("--repo", str(repo), "--name", "cnn", "--fp16")
    assert done.returncode == 2, done.stderr
    assert "TensorRT is not available on this machine" in done.stderr
    assert "No module named 'tensorrt'" in done.stderr and "trtexec" in done.stderr
    assert "NVIDIA GPU" in done.stderr and "Traceback" not in done.stderr
    assert not (repo / "cnn" / "1" / "model.plan").exists()
    assert (repo / "cnn" / "1" / "metadata.json").read_text() == before
    forced = _run_cli("--repo", str(repo), "--name", "cnn", "--backend", "trtexec")
    assert forced.returncode == 2 and "no 'trtexec' on PATH" in forced.stderr


def test_bad_requests_exit_before_looking_for_tensorrt(repo: Path):
    missing = _run_cli("--repo", str(repo), "--name", "nope")
    assert missing.returncode == 1 and "model 'nope' not found" in missing.stderr
    no_calib = _run_cli("--repo", str(repo), "--name", "cnn", "--int8")
    assert no_calib.returncode == 2 and "--int8 needs --calib-dir" in no_calib.stderr
    bad_batch = _run_cli("--repo", str(repo), "--name", "cnn", "--max-batch", "0")
    assert bad_batch.returncode == 2 and "--max-batch" in bad_batch.stderr


def test_onnx_runtime_fused_graphs_are_refused_for_tensorrt(repo: Path):
    entry_dir = repo / "cnn" / "1"
    fused = helper.make_model(
        helper.make_graph(
            [helper.make_node("Gelu", ["image"], ["probability_fake"], domain="com.microsoft")],
            "fused",
            [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 32, 32, 3])],
            [helper.make_tensor_value_info("probability_fake", TensorProto.FLOAT, None)],
        ),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
    )
    onnx.save(fused, entry_dir / "model.onnx")
    entry = ModelRepository(repo).entry("cnn")
    with pytest.raises(ExportError, match="com.microsoft"):
        onnx_source(entry, TensorRTConfig(repo=repo, name="cnn"), fp16_by_flag=True)
    write_model_entry(repo, "std", 1, TinyModelSpec(size=32))
    standard = ModelRepository(repo).entry("std")
    assert onnx_source(standard, TensorRTConfig(repo=repo, name="std"), True).name == "model.onnx"
    with pytest.raises(ExportError, match="--fp16"):  # TensorRT 11 needs model.fp16.onnx
        onnx_source(standard, TensorRTConfig(repo=repo, name="std", fp16=True), False)


def test_update_metadata_merges_files_and_keeps_the_rest(repo: Path):
    entry_dir = repo / "cnn" / "1"
    merged = update_metadata(entry_dir, {"files": {"plan": "model.plan"}, "tensorrt": {"x": 1}})
    on_disk = json.loads((entry_dir / "metadata.json").read_text())
    assert on_disk == merged and on_disk["files"] == {"onnx": "model.onnx", "plan": "model.plan"}
    assert on_disk["threshold"] == 0.5 and on_disk["tensorrt"] == {"x": 1}
    assert [p.name for p in entry_dir.iterdir() if p.name.startswith(".")] == []


def _build_or_skip(config: TensorRTConfig) -> dict:
    try:
        return build_plan(config)
    except TensorRTUnavailable as exc:  # the package is there, but no GPU or no such feature
        pytest.skip(reason=f"TensorRT cannot build here: {exc}")


@needs_tensorrt
def test_builds_fp16_plan_and_records_it(repo: Path):
    metadata = _build_or_skip(TensorRTConfig(repo=repo, name="cnn", fp16=True, max_batch=8))
    entry = ModelRepository(repo).entry("cnn")
    assert entry.plan_path is not None and entry.plan_path.stat().st_size > 0
    assert metadata["files"]["plan"] == "model.plan"
    assert metadata["tensorrt"]["precision"] == "fp16"
    assert metadata["tensorrt"]["profile"] == {"min_batch": 1, "opt_batch": 8, "max_batch": 8}


@needs_tensorrt
def test_builds_int8_plan_with_calibration_images(repo: Path, tmp_path: Path):
    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(0)
    for index in range(16):
        rgb = rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)
        (calib / f"{index}.png").write_bytes(encode_png(rgb))
    config = TensorRTConfig(repo=repo, name="cnn", int8=True, calib_dir=calib, calib_batch=4)
    metadata = _build_or_skip(config)
    assert metadata["tensorrt"]["precision"] == "int8"
    assert metadata["tensorrt"]["calibration"]["images"] == 16
    assert (repo / "cnn" / "1" / "model.plan").is_file()
