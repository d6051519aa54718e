"""EfficientNet-Lite0 detector training: split graph, cached views, head then fine-tune."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="the training extra is not installed")
import keras  # noqa: E402

from core.preprocessing import PreprocessConfig, preprocess_file  # noqa: E402
from train import __main__ as train_cli  # noqa: E402
from train.config import Lite0Config  # noqa: E402
from train.efficientnet_lite import build_lite0_base, build_lite0_parts, copy_weights  # noqa: E402
from train.synthetic import SyntheticConfig, write_splits  # noqa: E402
from train.views import ViewConfig, random_view  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
]


def test_parts_compose_to_the_base():
    base = build_lite0_base(64)
    lower, upper = build_lite0_parts("block5a", 64)
    assert copy_weights(base, lower, upper) == sum(1 for layer in base.layers if layer.weights)
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(upper(lower(x)), base(x), atol=1e-5)
    with pytest.raises(ValueError, match="cut must be"):
        build_lite0_parts("block9z")


def test_views_are_seeded_and_change_the_image():
    rgb = np.random.default_rng(1).integers(0, 256, (80, 60, 3), dtype=np.uint8)
    config = ViewConfig(resolution_probability=1.0, jpeg_probability=1.0)
    first = random_view(rgb, np.random.default_rng(5), config)
    again = random_view(rgb, np.random.default_rng(5), config)
    np.testing.assert_array_equal(first, again)
    assert first.dtype == np.uint8 and first.shape[2] == 3
    assert first.shape[0] < 80  # downscaled (resolution <= 1) and cropped
    with pytest.raises(ValueError, match="crop_scale"):
        ViewConfig(crop_scale=(0.0, 1.0))


def test_config_is_checked():
    with pytest.raises(ValueError, match="cut"):
        Lite0Config(data="d", out="o", cut="head")
    with pytest.raises(ValueError, match="weights"):
        Lite0Config(data="d", out="o", weights="/no/such.pth")


def test_lite0_run_end_to_end(tmp_path: Path):
    root = write_splits(tmp_path / "data", SyntheticConfig(per_class=6, size=40))
    (root / "manifest.json").write_text(json.dumps({"settings": {"align": "arcface5/z0.70"}}))
    run = tmp_path / "run"
    args = ["--model", "lite0", "--weights", "none", "--data", str(root), "--out", str(run)]
    args += ["--epochs", "2", "--fine-tune-epochs", "1", "--batch-size", "8", "--views", "2"]
    args += ["--cut", "block6d", "--no-progress"]
    assert train_cli.main(args) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["args"]["model"] == "lite0" and config["args"]["image_size"] == 224
    assert config["preprocessing"]["face_crop"] is True
    assert config["preprocessing"]["face_align"] == "arcface5/z0.70"  # as the data were cut
    assert config["data"]["counts"]["train"]["total"] == 12
    assert [s["stage"] for s in config["stages"]] == ["head", "fine_tune"]
    with (run / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["stage"] for row in rows][-1] == "fine_tune" and len(rows) == config["history_rows"]
    model = keras.saving.load_model(run / "model.keras", compile=False)
    assert {"features", "pool", "classifier"} <= {layer.name for layer in model.layers}
    path = next((root / "test" / "fake").iterdir())
    x = preprocess_file(str(path), PreprocessConfig(size=224))[None]
    p = float(np.asarray(model.predict_on_batch(x))[0, 0])
    assert 0.0 < p < 1.0


def test_lite0_bad_data_is_a_clear_error(tmp_path: Path, capsys):
    args = ["--model", "lite0", "--weights", "none", "--data", str(tmp_path / "none")]
    assert train_cli.main([*args, "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "error" in capsys.readouterr().err
