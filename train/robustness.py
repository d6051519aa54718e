"""``python -m train.robustness``: how much a trained run loses on degraded test images.

Each test image is decoded, degraded (JPEG re-compression at quality 95/75/50/30, downscale
x0.5, Gaussian blur sigma 1; :data:`train.transforms.ROBUSTNESS`) and only then sent through
``core.preprocessing`` like an upload would be. The model is scored with the temperature and
threshold that ``python -m train.evaluate`` fitted on validation (``RUN/report.json``):
ROC-AUC, accuracy and F1 at that threshold, and the AUC lost against the clean images.
With ``--by-source`` the same table is also given per source, the part of each file name
before ``__`` (``python -m dataprep build`` names files ``<source>__<name>``).
Writes ``OUT/robustness.json`` and ``OUT/robustness.md`` (OUT defaults to RUN).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from core.decision import calibrate
from core.options import option, options_from, options_parser, parse_bool
from train import metrics
from train.cli import run_command
from train.files import DatasetError, SplitFiles, load_split
from train.transforms import ROBUSTNESS, Transform

log = logging.getLogger(__name__)

SOURCE_SEPARATOR = "__"


@dataclass(frozen=True)
class RobustnessConfig:
    """Which run, which data, where to write; each field is one flag."""

    run: str = option(help="run folder with model.keras and report.json", metavar="DIR")
    data: str | None = option(None, "dataset folder (default: the run's data)", metavar="DIR")
    split: str = option("test", "which split to degrade", choices=("train", "val", "test"))
    out: str | None = option(None, "folder for the results (default: RUN)", metavar="DIR")
    onnx: str | None = option(
        None,
        "score this ONNX file of the run's model instead of RUN/model.keras (e.g. the INT8 file "
        "the server runs), same data, threshold and temperature",
        metavar="FILE",
    )
    batch_size: int = option(64, "images per batch", int)
    by_source: bool = option(
        False, "also one table per source (file-name prefix before '__')", parse_bool
    )
    workers: int = option(4, "threads for the image check", int)
    progress: bool = option(True, "progress bars", parse_bool)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.workers < 1:
            raise ValueError("--batch-size and --workers must be >= 1")


def read_report(run: Path) -> dict:
    """``RUN/report.json`` (threshold, temperature); a clear error if evaluation has not run."""
    path = run / "report.json"
    if not path.is_file():
        raise DatasetError(f"{path} not found: run python -m train.evaluate --run {run} first")
    report = json.loads(path.read_text())
    for key in ("threshold", "temperature"):
        if not isinstance(report.get(key), int | float):
            raise DatasetError(f"{path} has no numeric '{key}': re-run python -m train.evaluate")
    return report


def source_of(path: str) -> str:
    """The source prefix of a file name (``yonsei__x.jpg`` -> ``yonsei``), else ``all``."""
    name = Path(path).name
    return name.split(SOURCE_SEPARATOR, 1)[0] if SOURCE_SEPARATOR in name else "all"


def source_subsets(sources: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """A mask per source; a source of one class is scored against all of the other class."""
    masks = {}
    for source in sorted(set(sources)):
        mask = sources == source
        if len(set(y[mask])) == 2:
            masks[source] = mask
        elif y[mask].all():
            masks[f"{source} vs all reals"] = mask | (y == 0)
        else:
            masks[f"all fakes vs {source}"] = mask | (y == 1)
    return masks


def score(y: np.ndarray, p_cal: np.ndarray, threshold: float) -> dict:
    """ROC-AUC, accuracy, F1, ECE and image count of calibrated probabilities at ``threshold``."""
    at_threshold = metrics.threshold_metrics(y, p_cal, threshold)
    return {
        "roc_auc": metrics.roc_auc(y, p_cal),
        "accuracy": at_threshold["accuracy"],
        "f1": at_threshold["f1"],
        "ece": metrics.expected_calibration_error(y, p_cal),
        "n": int(y.size),
    }


def table(
    predictions: dict[str, np.ndarray], y: np.ndarray, threshold: float, temperature: float
) -> dict:
    """Scores per condition (``clean`` first) plus the AUC and accuracy lost against clean."""
    rows = {}
    for name, p in predictions.items():
        rows[name] = score(y, calibrate(p, temperature), threshold)
    clean = rows["clean"]
    for row in rows.values():
        row["auc_drop"] = clean["roc_auc"] - row["roc_auc"]
        row["accuracy_drop"] = clean["accuracy"] - row["accuracy"]
    return rows


def markdown(rows: dict, title: str) -> str:
    """One markdown table: condition, AUC, AUC lost (points), accuracy, F1."""
    lines = [
        f"**{title}** ({next(iter(rows.values()))['n']} images)",
        "",
        "| condition | ROC-AUC | AUC lost (points) | accuracy | F1 |",
        "|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['roc_auc']:.4f} | {100 * row['auc_drop']:+.2f} | "
            f"{row['accuracy']:.4f} | {row['f1']:.4f} |"
        )
    return "\n".join(lines) + "\n"


class OnnxModel:
    """An ONNX file behind the one Keras method :func:`train.predict.predict` calls."""

    def __init__(self, path: str) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def predict_on_batch(self, images) -> np.ndarray:
        batch = np.asarray(images, dtype=np.float32)
        return self.session.run(["probability_fake"], {self.input_name: batch})[0]


def predict_all(
    model, files: SplitFiles, size: int, config: RobustnessConfig
) -> dict[str, np.ndarray]:
    """Raw probabilities on clean images and under every degradation."""
    from train.predict import predict  # TensorFlow loads only here

    conditions: dict[str, Transform | None] = {"clean": None, **ROBUSTNESS}
    return {
        name: predict(model, files, size, config.batch_size, transform, config.progress, name)
        for name, transform in conditions.items()
    }


def run_robustness(config: RobustnessConfig) -> dict:
    """Score the run under every degradation; write and return ``robustness.json``."""
    from train.predict import load_run, read_run_config

    run = Path(config.run)
    report = read_report(run)
    if config.onnx:  # the run's Keras file is not loaded at all
        model, run_config = OnnxModel(config.onnx), read_run_config(run)
    else:
        model, run_config = load_run(run)
    data = config.data or run_config["data"]["folder"]
    size = int(run_config["args"]["image_size"])
    files = load_split(data, config.split, workers=config.workers)
    predictions = predict_all(model, files, size, config)
    y = np.asarray(files.labels)
    threshold, temperature = float(report["threshold"]), float(report["temperature"])
    result = {
        "run": str(run),
        "model_file": config.onnx or str(run / "model.keras"),
        "data": str(Path(data).resolve()),
        "split": config.split,
        "threshold": threshold,
        "temperature": temperature,
        "note": "degradation applied to the decoded image, then core.preprocessing; "
        "threshold and temperature fitted on validation by train.evaluate",
        "conditions": table(predictions, y, threshold, temperature),
    }
    if config.by_source:
        sources = np.array([source_of(path) for path in files.paths])
        result["by_source"] = {
            subset: table(
                {name: p[mask] for name, p in predictions.items()}, y[mask], threshold, temperature
            )
            for subset, mask in source_subsets(sources, y).items()
        }
    result["settings"] = asdict(config)
    result["created"] = datetime.now(UTC).isoformat(timespec="seconds")
    out = Path(config.out or run)
    out.mkdir(parents=True, exist_ok=True)
    (out / "robustness.json").write_text(json.dumps(result, indent=2))
    parts = [markdown(result["conditions"], f"{config.split}: all sources")]
    parts += [
        markdown(rows, f"{config.split}: {name}")
        for name, rows in result.get("by_source", {}).items()
    ]
    header = (
        f"# Robustness of `{result['model_file']}`\n\nThreshold {threshold:.4f} and temperature "
        f"{temperature:.4f} from validation; {result['note']}.\n\n"
    )
    (out / "robustness.md").write_text(header + "\n".join(parts))
    return result


def build_parser() -> argparse.ArgumentParser:
    return options_parser(
        "python -m train.robustness",
        "Score a trained, evaluated run on degraded test images: JPEG quality\n"
        "95/75/50/30, downscale x0.5, Gaussian blur sigma 1, re-shared (256 px + JPEG 75), "
        "each applied to the decoded\nimage before core.preprocessing. Uses the threshold and "
        "temperature in\nRUN/report.json (python -m train.evaluate). Writes robustness.json "
        "and robustness.md.",
        RobustnessConfig,
        epilog="example:\n  python -m train.robustness --run runs/cnn --data data/combined "
        "--by-source",
    )


def summary_lines(result: dict) -> list[dict]:
    return [
        {"roc_auc": {name: round(row["roc_auc"], 4) for name, row in result["conditions"].items()}}
    ]


def main(argv: list[str] | None = None) -> int:
    def run() -> dict:
        return run_robustness(options_from(RobustnessConfig, build_parser().parse_args(argv)))

    return run_command(run, summary_lines)


if __name__ == "__main__":
    raise SystemExit(main())
