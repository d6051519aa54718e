"""End to end: synthetic data -> python -m train -> python -m train.evaluate -> report.json.

The report's numbers are checked against scikit-learn on predictions made here
independently (core.preprocessing + the saved model).
"""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

tf = pytest.importorskip("tensorflow", reason="the training extra is not installed")
import keras  # noqa: E402

from core.decision import calibrate  # noqa: E402
from core.preprocessing import PreprocessConfig, preprocess_file  # noqa: E402
from train import __main__ as train_cli  # noqa: E402
from train import evaluate as evaluate_cli  # noqa: E402
from train.synthetic import SyntheticConfig, write_splits  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    # raised inside Keras 3.15 itself (saving, ReduceLROnPlateau) under numpy 2, not here
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
]

REPORT_KEYS = {"threshold", "temperature", "val", "test", "ci", "counts", "model", "data"}


def _break_some_images(root: Path) -> None:
    """One corrupt file in train and val (seen by training) and in test (seen by evaluation)."""
    good = next((root / "train" / "real").iterdir()).read_bytes()
    (root / "train" / "real" / "truncated.png").write_bytes(good[: len(good) // 3])
    (root / "val" / "fake" / "garbage.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (root / "test" / "real" / "empty.png").write_bytes(b"")


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    root = write_splits(tmp_path_factory.mktemp("data"), SyntheticConfig(per_class=24, size=32))
    _break_some_images(root)
    run = tmp_path_factory.mktemp("runs") / "cnn"
    train_args = ["--model", "cnn", "--data", str(root), "--out", str(run), "--epochs", "4"]
    train_args += ["--image-size", "32", "--cnn-filters", "8,16", "--batch-size", "8"]
    train_args += ["--lr", "3e-3", "--no-augment", "--no-progress", "--seed", "1"]
    assert train_cli.main(train_args) == 0
    evaluate_args = ["--run", str(run), "--data", str(root), "--bootstrap", "50"]
    assert evaluate_cli.main([*evaluate_args, "--robustness", "--no-progress"]) == 0
    return root, run


def _load_with_graph_contract(run: Path, size: int) -> keras.Model:
    model = keras.saving.load_model(run / "model.keras", compile=False)
    names = {layer.name for layer in model.layers}
    assert {"features", "pool", "classifier"} <= names
    assert model.inputs[0].name == "image" and tuple(model.input_shape) == (None, size, size, 3)
    return model


def _independent_test_predictions(run: Path, root: Path, size: int):
    """Labels and raw probabilities of the readable test images, computed without train/."""
    model = _load_with_graph_contract(run, size)
    paths, labels = [], []
    for label, name in enumerate(("real", "fake")):
        for path in sorted((root / "test" / name).iterdir()):
            if path.stat().st_size > 0:  # the one corrupt test file is empty
                paths.append(str(path))
                labels.append(label)
    images = np.stack([preprocess_file(p, PreprocessConfig(size=size)) for p in paths])
    return paths, np.array(labels), model.predict(images, verbose=0).ravel()


def _assert_report_matches_sklearn(run: Path, root: Path, size: int) -> dict:
    report = json.loads((run / "report.json").read_text())
    assert set(report) >= REPORT_KEYS
    paths, y, p_raw = _independent_test_predictions(run, root, size)
    with (run / "predictions.csv").open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "test"]
    assert [row["path"] for row in rows] == paths
    np.testing.assert_allclose([float(row["p_raw"]) for row in rows], p_raw, atol=1e-5)

    p = calibrate(p_raw, report["temperature"])
    predicted = (p >= report["threshold"]).astype(int)
    test = report["test"]
    assert test["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted), abs=1e-6)
    assert test["precision"] == pytest.approx(
        skm.precision_score(y, predicted, zero_division=0), abs=1e-6
    )
    assert test["recall"] == pytest.approx(skm.recall_score(y, predicted), abs=1e-6)
    assert test["f1"] == pytest.approx(skm.f1_score(y, predicted), abs=1e-6)
    assert test["confusion_matrix"] == skm.confusion_matrix(y, predicted).tolist()
    assert test["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-6)
    assert test["pr_auc"] == pytest.approx(skm.average_precision_score(y, p), abs=1e-6)
    fpr, tpr, _ = skm.roc_curve(y, p, drop_intermediate=False)
    assert test["tpr_at_fpr_5pct"] == pytest.approx(tpr[fpr <= 0.05].max(), abs=1e-6)
    assert report["counts"]["test"]["total"] == len(y)
    return report


def test_cnn_run_writes_model_history_and_config(cnn_run):
    root, run = cnn_run
    config = json.loads((run / "config.json").read_text())
    assert config["args"]["model"] == "cnn" and config["args"]["image_size"] == 32
    assert config["data"]["skipped_corrupt"] == 2  # train + val; test is checked by evaluate
    assert config["data"]["counts"]["train"] == {
        "real": 24,
        "fake": 24,
        "total": 48,
        "skipped_corrupt": 1,
        "ignored_non_image": 0,
    }
    assert config["versions"]["tensorflow"] == tf.__version__ and config["duration_s"] > 0
    with (run / "history.csv").open() as handle:
        history = list(csv.DictReader(handle))
    assert 1 <= len(history) <= 4
    assert {"loss", "val_loss", "val_auc", "learning_rate", "stage"} <= set(history[0])
    best = min(float(row["val_loss"]) for row in history)
    assert config["best"]["val_loss"] == pytest.approx(best, rel=1e-5)


def test_cnn_report_equals_scikit_learn_on_the_same_predictions(cnn_run):
    root, run = cnn_run
    report = _assert_report_matches_sklearn(run, root, 32)
    assert report["data"]["skipped_corrupt"] == 2  # the val and the test file
    assert report["model"]["kind"] == "cnn" and len(report["model"]["sha256"]) == 64
    assert 0.05 <= report["temperature"] <= 20 and 0 < report["threshold"] < 1
    for name in ("accuracy", "f1", "roc_auc"):
        low, high = report["ci"][name]["low"], report["ci"][name]["high"]
        assert low <= report["test"][name] <= high
    for key in ("ece_before_temperature", "ece_after_temperature", "eer", "tpr_at_fpr_1pct"):
        assert 0 <= report["test"][key] <= 1


def test_cnn_learns_the_synthetic_cue(cnn_run):
    _, run = cnn_run
    report = json.loads((run / "report.json").read_text())
    assert report["test"]["roc_auc"] > 0.75


def test_plots_and_robustness_table(cnn_run):
    _, run = cnn_run
    report = json.loads((run / "report.json").read_text())
    for relative in report["plots"].values():
        data = (run / relative).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert set(report["plots"]) == {"roc", "pr", "confusion_matrix", "reliability"}
    table = report["robustness"]
    expected = {"clean", "jpeg_q95", "jpeg_q75", "jpeg_q50", "jpeg_q30", "downscale_x0.5"}
    assert expected | {"blur_sigma1", "reshared_256_q75"} == set(table)
    assert table["clean"]["roc_auc"] == pytest.approx(report["test"]["roc_auc"])
    assert all(0 <= row["roc_auc"] <= 1 for row in table.values())
    assert table["jpeg_q30"] != table["clean"]


def test_xception_head_then_fine_tune_and_report(tmp_path):
    root = write_splits(tmp_path / "data", SyntheticConfig(per_class=4, size=72))
    run = tmp_path / "xception"
    args = ["--model", "xception", "--weights", "none", "--data", str(root), "--out", str(run)]
    args += ["--epochs", "1", "--fine-tune-epochs", "1", "--image-size", "71", "--no-progress"]
    assert train_cli.main([*args, "--batch-size", "4"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert [stage["stage"] for stage in config["stages"]] == ["head", "fine_tune"]
    assert config["stages"][1]["unfrozen_layers"] > 0
    assert config["stages"][1]["lr"] == pytest.approx(1e-4)
    with (run / "history.csv").open() as handle:
        assert [row["stage"] for row in csv.DictReader(handle)] == ["head", "fine_tune"]
    assert evaluate_cli.main(["--run", str(run), "--bootstrap", "0", "--no-progress"]) == 0
    report = _assert_report_matches_sklearn(run, root, 71)
    assert report["ci"] is None and report["model"]["kind"] == "xception"


def test_bad_input_is_a_clear_error_not_a_crash(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    base = ["--out", str(tmp_path / "run"), "--epochs", "1", "--image-size", "32"]
    assert train_cli.main(["--data", str(tmp_path / "empty"), *base]) == 2
    assert "no 'train' split folder" in capsys.readouterr().err
    root = write_splits(tmp_path / "data", SyntheticConfig(per_class=3, size=8))
    for path in (root / "train" / "real").iterdir():
        path.unlink()
    assert train_cli.main(["--data", str(root), *base]) == 2
    assert "only one class" in capsys.readouterr().err
    assert train_cli.main(["--data", str(root), *base, "--model", "xception"]) == 2
    assert "Xception needs --image-size >= 71" in capsys.readouterr().err
    assert train_cli.main(["--data", str(root), *base, "--weights", "imagenet"]) == 2
    assert "xception only" in capsys.readouterr().err
    assert train_cli.main(["--data", str(root), *base, "--cnn-filters", "8,x"]) == 2
    assert "--cnn-filters" in capsys.readouterr().err
    assert evaluate_cli.main(["--run", str(tmp_path / "no-run"), "--data", str(root)]) == 2
    assert "model.keras not found" in capsys.readouterr().err
    assert not (tmp_path / "run" / "model.keras").exists()


@pytest.mark.parametrize(
    ("parse", "words"),
    [
        (train_cli.parse_config, ("--model", "--data", "--epochs", "--out", "--weights", "split")),
        (evaluate_cli.parse_config, ("--run", "--bootstrap", "--threshold-rule", "VALIDATION")),
    ],
    ids=["train", "evaluate"],
)
def test_help_reads_well(parse, words, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for word in words:
        assert word in text
