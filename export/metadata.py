"""The ``metadata.json`` of a repository entry (fields per docs/CONTRACTS.md)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import onnx
import onnxruntime

from core.decision import CLASS_NAMES
from core.preprocessing import PreprocessConfig, contract

from .config import ExportError

FILES = {
    "onnx": "model.onnx",
    "onnx_portable": "model.portable.onnx",
    "onnx_fp16": "model.fp16.onnx",
    "onnx_int8": "model.int8.onnx",
    "onnx_qdq": "model.qdq.onnx",
    "plan": "model.plan",
}
METRIC_KEYS = ("test", "val", "validation", "ci")
NO_REPORT_NOTE = (
    "exported without an evaluation report: threshold 0.5 and temperature 1.0 are defaults, "
    "not fitted on validation data, and no metrics are known"
)


@dataclass(frozen=True)
class Calibration:
    """Decision threshold, temperature and metrics, from report.json or defaults."""

    threshold: float = 0.5
    temperature: float = 1.0
    metrics: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    training_data: str | None = None
    face_crop: bool = False  # the model was trained on core.facecrop crops
    face_align: str | None = None  # ... aligned to this core.facealign template
    decision: dict | None = None  # the two verdict thresholds fitted on validation

    def preprocess_config(self, size: int) -> PreprocessConfig:
        """The contract the model was trained with, at input ``size``."""
        return PreprocessConfig(size=size, face_crop=self.face_crop, face_align=self.face_align)


def read_report(path: Path | None) -> Calibration:
    """Threshold / temperature / metrics of an evaluation ``report.json``, or the defaults."""
    if path is None:
        return Calibration(notes=(NO_REPORT_NOTE,))
    try:
        report = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ExportError(f"evaluation report {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ExportError(f"cannot read evaluation report {path}: {exc}") from None
    if not isinstance(report, dict):
        raise ExportError(f"evaluation report {path} must hold a JSON object")
    try:
        threshold, temperature = float(report["threshold"]), float(report["temperature"])
    except KeyError as exc:
        raise ExportError(f"evaluation report {path} lacks {exc.args[0]!r}") from None
    except (TypeError, ValueError):
        raise ExportError(f"evaluation report {path}: threshold/temperature not numbers") from None
    if not (0.0 <= threshold <= 1.0) or not (temperature > 0 and math.isfinite(temperature)):
        raise ExportError(
            f"evaluation report {path}: threshold must be in [0, 1] and temperature positive, "
            f"got {threshold} and {temperature}"
        )
    metrics = {key: report[key] for key in METRIC_KEYS if key in report}
    if "test" not in metrics:
        raise ExportError(f"evaluation report {path} lacks 'test' metrics")
    preprocessing = report.get("preprocessing") or {}
    face_crop = bool(preprocessing.get("face_crop", False))
    face_align = preprocessing.get("face_align") if face_crop else None
    decision = report.get("decision")
    if decision is not None:
        decision = {
            key: decision[key] for key in ("real_below", "fake_from", "reason") if key in decision
        }
    holdout = read_holdout(Path(path).parent / "holdout.json")
    if holdout:
        metrics["holdout"] = holdout
    return Calibration(
        threshold, temperature, metrics, (), report.get("training_data"), face_crop, face_align,
        decision,
    )  # fmt: skip


def read_holdout(path: Path) -> dict | None:
    """Per fold of ``python -m train.holdout``'s report beside the evaluation report: what was
    held out and how the model did on it (flagged-FAKE rate or AUC, and whether the target
    was met), so that ``/v1/models`` and the model card can say where it fails."""
    if not path.is_file():
        return None
    try:
        folds = json.loads(path.read_text())["folds"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ExportError(f"cannot read source-holdout report {path}: {exc}") from None
    keys = ("kind", "held_out_sources", "flagged_fake_rate", "auc", "met")
    return {name: {k: fold[k] for k in keys if k in fold} for name, fold in folds.items()}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class EntryFacts:
    """What the pipeline learned that goes into the metadata."""

    name: str
    version: int
    model_kind: str
    input_size: int
    cam_shape: tuple[int, int]
    files: dict
    keras_model: str
    keras_sha256: str
    report_path: str | None
    training_data: str | None
    opset: int
    optimization: str
    parity: dict
    converter_versions: dict
    serve_precision: str | None = None  # the file the server serves by default, if not FP32


def build_metadata(facts: EntryFacts, calibration: Calibration) -> dict:
    """The full metadata dict, in the order of docs/CONTRACTS.md."""
    size = facts.input_size
    training_data = facts.training_data or calibration.training_data
    notes = list(calibration.notes)
    if training_data is None:
        training_data = "not stated at export (pass --training-data)"
    if size != 224:
        notes.append(f"input size {size}, not the contract's 224: for tests and experiments")
    metadata = {
        "name": facts.name,
        "version": facts.version,
        "format": "onnx",
        "files": facts.files,
        "inputs": [{"name": "image", "shape": [-1, size, size, 3], "dtype": "float32"}],
        "outputs": [
            {"name": "probability_fake", "shape": [-1, 1], "dtype": "float32"},
            {"name": "cam", "shape": [-1, *facts.cam_shape], "dtype": "float32"},
        ],
        "preprocessing": contract(calibration.preprocess_config(size)),
        "class_names": list(CLASS_NAMES),
        "positive_class": CLASS_NAMES[1],
        "threshold": calibration.threshold,
        **({"decision": calibration.decision} if calibration.decision else {}),
        "temperature": calibration.temperature,
        "metrics": calibration.metrics,
        "training_data": training_data,
        "reports": str(Path(facts.report_path).parent) + "/" if facts.report_path else None,
        "model_kind": facts.model_kind,
        "source": {"keras_model": facts.keras_model, "sha256": facts.keras_sha256},
        "parity": facts.parity,
        "onnx": {"opset": facts.opset, "optimization": f"onnxruntime {facts.optimization}"},
        "export_tools": {
            **facts.converter_versions,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if facts.serve_precision:
        metadata["serve_precision"] = facts.serve_precision
    if notes:
        metadata["notes"] = notes
    return metadata
