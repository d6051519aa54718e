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
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.decision import calibrate
from train import robustness
from train.files import DatasetError, SplitFiles, load_split
from train.plots import write_plots
from train.predict import load_run, predict
from train.report import THRESHOLD_RULES, evaluate_predictions
from train.transforms import ROBUSTNESS

if TYPE_CHECKING:  # TensorFlow loads only when a run is evaluated, not for --help
    import keras

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluateConfig:
    """What to evaluate and how."""

    run: str
    data: str | None = None  # None: the data folder recorded in RUN/config.json
    bootstrap: int = 1000
    seed: int = 0
    threshold_rule: str = "f1"
    batch_size: int = 64
    robustness: bool = False
    workers: int = 4
    progress: bool = True


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
    if config.threshold_rule not in THRESHOLD_RULES:
        raise ValueError(f"threshold rule must be one of {THRESHOLD_RULES}")
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
        y["val"],
        p["val"],
        y["test"],
        p["test"],
        threshold_rule=config.threshold_rule,
        bootstrap=config.bootstrap,
        seed=config.seed,
    )
    p_test_cal = calibrate(p["test"], report["temperature"])
    plots = write_plots(
        run / "plots", y["test"], p["test"], p_test_cal, report["temperature"], report["threshold"]
    )
    write_predictions(
        run / "predictions.csv",
        [(s, files, p[s]) for s, files in splits.items()],
        report["temperature"],
    )
    skipped = {s: files.skipped for s, files in splits.items() if files.skipped}
    report |= {
        "counts": {s: files.counts() for s, files in splits.items()},
        "model": {
            "run": str(run),
            "path": str(run / "model.keras"),
            "kind": run_config["args"]["model"],
            "image_size": size,
            "parameters": int(model.count_params()),
            "sha256": sha256(run / "model.keras"),
        },
        "preprocessing": run_config.get("preprocessing"),
        "data": {
            "folder": str(Path(data).resolve()),
            "skipped_corrupt": sum(len(v) for v in skipped.values()),
            "skipped_files": skipped,
        },
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


def _json_default(value: object) -> object:
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m train.evaluate",
        description="Evaluate a training run. Temperature scaling and the decision threshold\n"
        "are fitted on the VALIDATION split; metrics are computed once on TEST.\n"
        "Writes RUN/report.json, RUN/predictions.csv and RUN/plots/*.png.",
        epilog="example:\n  python -m train.evaluate --run runs/cnn --data data/faces "
        "--bootstrap 1000 --robustness",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--run", required=True, help="run folder written by python -m train")
    parser.add_argument(
        "--data", default=None, help="dataset with val/ and test/ (default: the run's data)"
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        metavar="N",
        default=1000,
        help="bootstrap resamples for 95%% confidence intervals (1000; 0 = none)",
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (0)")
    parser.add_argument(
        "--threshold-rule",
        choices=THRESHOLD_RULES,
        default="f1",
        help="threshold chosen on validation to maximise F1 or Youden's J = TPR - FPR (f1)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=64, metavar="N", help="images per batch (64)"
    )
    parser.add_argument(
        "--robustness",
        action="store_true",
        help="also score test under JPEG q95/75/50/30, downscale x0.5, blur sigma 1 "
        "and re-shared at 256 px + JPEG q75",
    )
    parser.add_argument("--workers", type=int, default=4, help="threads for the image check (4)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    config = EvaluateConfig(
        run=args.run,
        data=args.data,
        bootstrap=max(0, args.bootstrap),
        seed=args.seed,
        threshold_rule=args.threshold_rule,
        batch_size=args.batch_size,
        robustness=args.robustness,
        workers=args.workers,
        progress=not args.no_progress,
    )
    try:
        report = evaluate(config)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    test = report["test"]
    summary = {k: test[k] for k in ("accuracy", "f1", "roc_auc", "pr_auc", "eer", "ece")}
    print(json.dumps({"threshold": report["threshold"], "temperature": report["temperature"]}))
    print(json.dumps({"test": summary}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
