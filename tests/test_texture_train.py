"""The texture detector: its graph, the cached moments, the head folded into the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="the training extra is not installed")
import keras  # noqa: E402

from core.preprocessing import PreprocessConfig, preprocess_file  # noqa: E402
from export.graph import build_export_model, keras_outputs  # noqa: E402
from train import __main__ as train_cli  # noqa: E402
from train.config import TextureConfig  # noqa: E402
from train.holdout import fit_head  # noqa: E402
from train.synthetic import SyntheticConfig, write_splits  # noqa: E402
from train.texture import pooled_features  # noqa: E402
from train.texture_model import build_texture_model  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
]


def images(paths: list[Path]) -> np.ndarray:
    return np.stack([preprocess_file(str(p), PreprocessConfig(size=224)) for p in paths])


def test_pool_is_each_channels_first_and_second_moment():
    model = build_texture_model("none")
    x = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    early = model.get_layer("lite0_early")
    fine, coarse = (np.asarray(m, dtype=np.float64) for m in early(x))
    pooled = np.asarray(keras.Model(model.input, model.get_layer("pool").output)(x))
    expected = np.concatenate(
        [fine.mean((1, 2)), (fine**2).mean((1, 2)), coarse.mean((1, 2)), (coarse**2).mean((1, 2))],
        axis=1,
    )
    assert pooled.shape == (2, 128)
    np.testing.assert_allclose(pooled, expected, rtol=1e-4, atol=1e-4)


def test_config_is_checked():
    with pytest.raises(ValueError, match="c must be"):
        TextureConfig(data="d", out="o", c=0.0)


def test_texture_run_folds_the_head_into_the_model(tmp_path: Path):
    root = write_splits(tmp_path / "data", SyntheticConfig(per_class=8, size=48))
    (root / "manifest.json").write_text(json.dumps({"settings": {"align": "arcface5/z0.70"}}))
    run = tmp_path / "run"
    args = ["--model", "texture", "--data", str(root), "--out", str(run), "--no-progress"]
    assert train_cli.main(args) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["args"]["model"] == "texture" and config["data"]["features"] == "lite0-moments"
    assert config["preprocessing"]["face_align"] == "arcface5/z0.70"
    assert config["trainable"] == 129  # 128 weights and a bias: the backbone stays ImageNet's
    assert (root / "features" / "lite0-moments.npz").exists()  # cached for the holdout report

    model = keras.saving.load_model(run / "model.keras", compile=False)
    train = sorted((root / "train").rglob("*.png"))
    labels = np.asarray([int(p.parent.name == "fake") for p in train])
    head = fit_head(pooled_features(root, [str(p) for p in train], False), labels, 0.05)
    test = sorted((root / "test").rglob("*.png"))
    expected = head.predict_proba(pooled_features(root, [str(p) for p in test], False))[:, 1]
    served = np.asarray(model.predict_on_batch(images(test)))[:, 0]
    np.testing.assert_allclose(served, expected, atol=2e-3)  # features cached as float16

    exported = build_export_model(model)  # the class-activation map is exact: mean = logit
    probability, cam = keras_outputs(exported, images(test[:2]))
    logit = np.log(probability[:, 0] / (1 - probability[:, 0]))
    np.testing.assert_allclose(cam.mean(axis=(1, 2)), logit, rtol=1e-3, atol=1e-3)
    assert cam.shape[1:] == (28, 28)
