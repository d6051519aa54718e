"""``python -m train.evaluate``: calibrated, thresholded evaluation of a training run.

Predicts the val and test splits with ``RUN/model.keras``, fits temperature and threshold
on validation (:mod:`train.report`), scores test once, and writes ``RUN/report.json``,
``RUN/predictions.csv`` and ``RUN/plots/{roc,pr,confusion_matrix,reliability}.png``.
With ``--robustness`` it also scores test images degraded before preprocessing
(JPEG q95/75/50/30, downscale x0.5, Gaussian blur sigma 1, re-shared at 256 px + JPEG 75)
with the same temperature and threshold.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.decision import calibrate
from core.options import option, options_from, options_parser, parse_bool
from train import robustness
from train.cli import run_command
from train.files import SplitFiles, load_split
from train.plots import write_plots
from train.predict import load_run, predict
from train.report import THRESHOLD_RULES, evaluate_predictions
from train.transforms import ROBUSTNESS

if TYPE_CHECKING:  # TensorFlow loads only when a run is evaluated, not for --help
    import keras

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluateConfig:
    """What to evaluate and how; each field is one flag of ``python -m train.evaluate``."""

    run: str = option(help="run folder written by python -m train", metavar="DIR")
    data: str | None = option(
        None, "dataset with val/ and test/ (default: the run's data)", metavar="DIR"
    )
    bootstrap: int = option(
        1000, "bootstrap resamples for 95%% confidence intervals (0 = none)", int
    )
    seed: int = option(0, "bootstrap seed", int)
    threshold_rule: str = option(
        "f1",
        "threshold chosen on validation to maximise F1 or Youden's J = TPR - FPR",
        choices=THRESHOLD_RULES,
    )
    batch_size: int = option(64, "images per batch", int)
    robustness: bool = option(
        False,
        "also score test under JPEG q95/75/50/30, downscale x0.5, blur sigma 1 "
        "and re-shared at 256 px + JPEG q75",
        parse_bool,
    )
    workers: int = option(4, "threads for the image check", int)
    progress: bool = option(True, "progress bars", parse_bool)

    def __post_init__(self) -> None:
        if self.bootstrap < 0 or self.batch_size < 1 or self.workers < 1:
            raise ValueError("--bootstrap must be >= 0, --batch-size and --workers >= 1")


def robustness_table(
    model: keras.Model,
    files: SplitFiles,
    run_config: dict,
    config: EvaluateConfig,
    report: dict,
    clean: np.ndarray,
) -> dict:
    """Test metrics (same temperature and threshold) under each degradation in ROBUSTNESS.

    The table is :func:`train.robustness.table`, the same one ``python -m train.robustness``
    writes (that command adds per-source tables and markdown).
    """
    size = run_config["args"]["image_size"]
    predictions = {"clean": clean}
    for name, transform in ROBUSTNESS.items():
        predictions[name] = predict(
            model, files, size, config.batch_size, transform, config.progress, name
        )
    return robustness.table(
        predictions, np.asarray(files.labels), report["threshold"], report["temperature"]
    )


def write_predictions(path: Path, rows: list[tuple[str, SplitFiles, np.ndarray]], t: float):
    """``split, path, label, p_raw, p_calibrated`` for every evaluated image."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["split", "path", "label", "p_raw", "p_calibrated"])
        for split, files, p in rows:
            for file, label, raw, cal in zip(
                files.paths, files.labels, p, calibrate(p, t), strict=True
            ):
                writer.writerow([split, file, label, repr(float(raw)), repr(float(cal))])


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def evaluate(config: EvaluateConfig) -> dict:
    """Evaluate one run; writes and returns the report."""
    clock = time.perf_counter()
    run = Path(config.run)
    model, run_config = load_run(run)
    data = config.data or run_config["data"]["folder"]
    size = int(run_config["args"]["image_size"])
    splits = {s: load_split(data, s, workers=config.workers) for s in ("val", "test")}
    p = {
        s: predict(model, files, size, config.batch_size, progress=config.progress)
        for s, files in splits.items()
    }
    y = {s: np.asarray(files.labels) for s, files in splits.items()}
    report = evaluate_predictions(
        y["val"], p["val"], y["test"], p["test"],
        threshold_rule=config.threshold_rule, bootstrap=config.bootstrap, seed=config.seed,
    )  # fmt: skip
    p_test_cal = calibrate(p["test"], report["temperature"])
    plots = write_plots(
        run / "plots", y["test"], p["test"], p_test_cal, report["temperature"], report["threshold"]
    )
    write_predictions(
        run / "predictions.csv",
        [(s, files, p[s]) for s, files in splits.items()],
        report["temperature"],
    )
    report |= run_facts(run, model, run_config, data, splits) | {
        "settings": asdict(config),
        "plots": {name: f"plots/{file}" for name, file in plots.items()},
        "predictions": "predictions.csv",
    }
    if config.robustness:
        report["robustness"] = robustness_table(
            model, splits["test"], run_config, config, report, p["test"]
        )
    report["created"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["duration_s"] = round(time.perf_counter() - clock, 2)
    (run / "report.json").write_text(json.dumps(report, indent=2, default=_json_default))
    return report


def run_facts(
    run: Path, model: keras.Model, run_config: dict, data: str, splits: dict[str, SplitFiles]
) -> dict:
    """What was evaluated: counts, the model file and kind, preprocessing, skipped files."""
    skipped = {s: files.skipped for s, files in splits.items() if files.skipped}
    return {
        "counts": {s: files.counts() for s, files in splits.items()},
        "model": {
            "run": str(run),
            "path": str(run / "model.keras"),
            "kind": run_config["args"]["model"],
            "image_size": int(run_config["args"]["image_size"]),
            "parameters": int(model.count_params()),
            "sha256": sha256(run / "model.keras"),
        },
        "preprocessing": run_config.get("preprocessing"),
        "data": {
            "folder": str(Path(data).resolve()),
            "skipped_corrupt": sum(len(v) for v in skipped.values()),
            "skipped_files": skipped,
        },
    }


def _json_default(value: object) -> object:
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def build_parser() -> argparse.ArgumentParser:
    return options_parser(
        "python -m train.evaluate",
        "Evaluate a training run. Temperature scaling and the decision threshold\n"
        "are fitted on the VALIDATION split; metrics are computed once on TEST.\n"
        "Writes RUN/report.json, RUN/predictions.csv and RUN/plots/*.png.",
        EvaluateConfig,
        epilog="example:\n  python -m train.evaluate --run runs/texture --data data/detector "
        "--bootstrap 1000 --robustness",
    )


def parse_config(argv: list[str] | None = None) -> EvaluateConfig:
    return options_from(EvaluateConfig, build_parser().parse_args(argv))


def summary_lines(report: dict) -> list[dict]:
    test = report["test"]
    summary = {k: test[k] for k in ("accuracy", "f1", "roc_auc", "pr_auc", "eer", "ece")}
    return [
        {"threshold": report["threshold"], "temperature": report["temperature"]},
        {"test": summary},
    ]


def main(argv: list[str] | None = None) -> int:
    return run_command(lambda: evaluate(parse_config(argv)), summary_lines)


if __name__ == "__main__":
    raise SystemExit(main())
