"""``python -m train.per_source``: per-source metrics of an evaluated run, from its files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from train.per_source import main

SOURCES = (("ffhq", "real", 0.2), ("gan", "fake", 0.9), ("sd21", "fake", 0.3))  # mean p_raw


def write_run(tmp_path: Path) -> tuple[Path, Path]:
    """An evaluated run (report.json, predictions.csv) over a dataset of one real and two fake
    sources (manifest.json): gan fakes score high, sd21 fakes sit among the reals."""
    run, data = tmp_path / "run", tmp_path / "data"
    run.mkdir()
    data.mkdir()
    rng = np.random.default_rng(0)
    rows, files = [], []
    for source, kind, centre in (
        ("ffhq", "real", 0.2),
        ("gan", "fake", 0.9),
        ("sd21", "fake", 0.3),
    ):
        for index in range(12):
            name = f"{source}__{index}.png"
            files.append({"file": f"test/{kind}/{name}", "source": source, "class": kind})
            p = float(np.clip(rng.normal(centre, 0.1), 0.01, 0.99))
            rows.append({"split": "test", "path": str(data / "test" / kind / name),
                         "label": int(kind == "fake"), "p_raw": p})  # fmt: skip
    rows.append({"split": "val", "path": "elsewhere.png", "label": 0, "p_raw": 0.5})
    (data / "manifest.json").write_text(json.dumps({"files": files}))
    (run / "report.json").write_text(json.dumps({"threshold": 0.5, "temperature": 1.0}))
    with (run / "predictions.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["split", "path", "label", "p_raw"])
        writer.writeheader()
        writer.writerows(rows)
    return run, data


def test_each_fake_source_is_scored_against_the_reals(tmp_path: Path):
    run, data = write_run(tmp_path)
    assert main(["--run", str(run), "--data", str(data), "--bootstrap", "50"]) == 0
    subsets = json.loads((run / "per_source.json").read_text())["subsets"]
    assert subsets["all"]["counts"] == {"real": 12, "fake": 24}  # the val row is left out
    assert subsets["gan vs ffhq"]["counts"] == {"real": 12, "fake": 12}
    assert subsets["gan vs ffhq"]["roc_auc"] > subsets["sd21 vs ffhq"]["roc_auc"]
    for subset in subsets.values():
        low, high = subset["ci"]["roc_auc"]["low"], subset["ci"]["roc_auc"]["high"]
        assert low <= subset["roc_auc"] <= high
    assert "| gan vs ffhq | 24 (12/12) |" in (run / "per_source.md").read_text()


def test_a_missing_input_is_a_clear_error(tmp_path: Path, capsys):
    run, data = write_run(tmp_path)
    (run / "predictions.csv").unlink()
    assert main(["--run", str(run), "--data", str(data)]) == 2
    assert "predictions.csv not found" in capsys.readouterr().err
