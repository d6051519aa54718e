"""train.robustness: degraded-test scoring of a run, checked against independent predictions.

A tiny untrained CNN (32x32) and a synthetic split stand in for a real run; the expected
numbers are recomputed here from core.preprocessing + the saved model + scikit-learn.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from core.decision import calibrate
from core.preprocessing import PreprocessConfig, decode_rgb, encode_jpeg, preprocess_bytes
from train import robustness
from train.synthetic import SyntheticConfig, write_splits
from train.transforms import ROBUSTNESS

pytestmark = pytest.mark.filterwarnings(  # raised inside Keras 3.15 under numpy 2, not here
    "ignore:__array__ implementation doesn't accept a copy keyword"
)
SIZE = 32
THRESHOLD, TEMPERATURE = 0.5, 1.7


def test_source_of_uses_the_prefix_before_double_underscore():
    assert robustness.source_of("data/test/fake/yonsei__mid_1.jpg") == "yonsei"
    assert robustness.source_of("/x/lfw_faceswap__a__b.jpg") == "lfw_faceswap"
    assert robustness.source_of("plain_name.jpg") == "all"


def test_table_scores_and_drops_against_clean():
    y = np.array([0, 0, 1, 1])
    clean = np.array([0.1, 0.2, 0.8, 0.9])  # perfect ranking
    worse = np.array([0.1, 0.8, 0.2, 0.9])  # one pair swapped
    rows = robustness.table({"clean": clean, "worse": worse}, y, THRESHOLD, 1.0)
    assert rows["clean"]["roc_auc"] == 1.0 and rows["clean"]["auc_drop"] == 0.0
    assert rows["worse"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y, worse))
    assert rows["worse"]["auc_drop"] == pytest.approx(1.0 - skm.roc_auc_score(y, worse))
    assert rows["worse"]["accuracy"] == 0.5 and rows["worse"]["accuracy_drop"] == 0.5
    assert "| worse | 0.7500 | +25.00 | 0.5000 |" in robustness.markdown(rows, "t")


def test_missing_report_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{}")
    assert robustness.main(["--run", str(tmp_path), "--no-progress"]) == 2
    assert "python -m train.evaluate" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A saved untrained tiny CNN with the run files train.evaluate would leave behind."""
    keras = pytest.importorskip("keras", reason="the training extra is not installed")
    from train.models import build_cnn

    data = write_splits(tmp_path_factory.mktemp("data"), SyntheticConfig(per_class=6, size=40))
    for index, path in enumerate(sorted((data / "test").rglob("*.png"))):
        path.rename(path.with_name(f"{'ab'[index % 2]}__{path.name}"))  # two "sources"
    run = tmp_path_factory.mktemp("run")
    keras.utils.set_random_seed(3)
    model = build_cnn(SIZE, filters=(4, 8), dropout=0.0)
    model.save(run / "model.keras")
    config = {"args": {"image_size": SIZE, "model": "cnn"}, "data": {"folder": str(data)}}
    (run / "config.json").write_text(json.dumps(config))
    (run / "report.json").write_text(
        json.dumps({"threshold": THRESHOLD, "temperature": TEMPERATURE})
    )
    return data, run, model


def _expected(model, paths, labels, transform=None) -> tuple[float, float]:
    config = PreprocessConfig(size=SIZE)
    images = []
    for path in paths:
        data = Path(path).read_bytes()
        if transform is not None:
            data = transform(decode_rgb(data))
        images.append(preprocess_bytes(data, config))
    p = calibrate(model.predict(np.stack(images), verbose=0).reshape(-1), TEMPERATURE)
    accuracy = float(np.mean((p >= THRESHOLD) == np.asarray(labels, dtype=bool)))
    return skm.roc_auc_score(labels, p), accuracy


def test_cli_writes_json_and_markdown_matching_independent_predictions(tiny_run, tmp_path):
    data, run, model = tiny_run
    out = tmp_path / "out"
    args = ["--run", str(run), "--out", str(out), "--by-source", "--batch-size", "5"]
    assert robustness.main([*args, "--no-progress"]) == 0
    result = json.loads((out / "robustness.json").read_text())
    assert list(result["conditions"]) == ["clean", *ROBUSTNESS]
    assert set(result["by_source"]) == {"a", "b"}
    assert result["threshold"] == THRESHOLD and result["temperature"] == TEMPERATURE

    paths = sorted(str(p) for p in (data / "test").rglob("*.png"))
    labels = [int(Path(p).parent.name == "fake") for p in paths]
    auc, accuracy = _expected(model, paths, labels)
    clean = result["conditions"]["clean"]
    assert clean["n"] == 12 and clean["roc_auc"] == pytest.approx(auc, abs=1e-6)
    assert clean["accuracy"] == pytest.approx(accuracy)

    q30 = result["conditions"]["jpeg_q30"]
    auc30, _ = _expected(model, paths, labels, lambda rgb: encode_jpeg(rgb, 30))
    assert q30["roc_auc"] == pytest.approx(auc30, abs=1e-6)
    assert q30["auc_drop"] == pytest.approx(clean["roc_auc"] - q30["roc_auc"])
    assert sum(rows["clean"]["n"] for rows in result["by_source"].values()) == 12

    text = (out / "robustness.md").read_text()
    assert "| jpeg_q75 |" in text and "test: a" in text and "test: b" in text


def test_onnx_file_is_scored_instead_of_the_keras_model(tiny_run, tmp_path):
    """``--onnx``: the same data, threshold and temperature, the ONNX file's answers (here a
    tiny ONNX model that differs from the run's Keras model, computed independently)."""
    import onnx
    from helpers import TinyModelSpec, build_tiny_model, expected_probability

    data, run, _ = tiny_run
    model_file = tmp_path / "model.int8.onnx"
    onnx.save(build_tiny_model(TinyModelSpec(size=SIZE)), model_file)
    out = tmp_path / "out"
    args = ["--run", str(run), "--out", str(out), "--onnx", str(model_file), "--no-progress"]
    assert robustness.main(args) == 0
    result = json.loads((out / "robustness.json").read_text())
    assert result["model_file"] == str(model_file)
    paths = sorted(str(p) for p in (data / "test").rglob("*.png"))
    labels = [int(Path(p).parent.name == "fake") for p in paths]
    config = PreprocessConfig(size=SIZE)
    raw = [expected_probability(preprocess_bytes(Path(p).read_bytes(), config)) for p in paths]
    auc = skm.roc_auc_score(labels, calibrate(np.asarray(raw), TEMPERATURE))
    assert result["conditions"]["clean"]["roc_auc"] == pytest.approx(auc, abs=1e-6)
    assert (out / "robustness.md").read_text().startswith(f"# Robustness of `{model_file}`")
