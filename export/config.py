"""Export settings and the errors the export CLIs turn into clear messages."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from core.options import option, options_from, parse_bool

C = TypeVar("C")

DEFAULT_OPSET = 17
MIN_OPSET = 17
DEFAULT_TOLERANCE = 1e-4
GATE_MIN_IMAGES = 1000  # labelled parity images before an INT8 AUC delta can be trusted
OPTIMIZATION_LEVELS = ("basic", "extended", "all")


class ExportError(Exception):
    """A problem the user can fix (bad path, existing version, failed parity...)."""

    exit_code = 1


class ParityError(ExportError):
    """ONNX Runtime does not reproduce the Keras model within tolerance."""


@dataclass(frozen=True)
class ExportConfig:
    """Everything one ``python -m export`` run needs; each field is one flag."""

    model_path: Path = option(help="the trained .keras file", parse=Path, flag="--model")
    name: str = option(help="model name in the repository, e.g. texture")
    repo: Path = option(Path("models"), "repository root", Path, metavar="DIR")
    version: int | None = option(None, "version number (default: next free)", int)
    report_path: Path | None = option(
        None, "evaluation report.json (threshold, temperature, metrics)", Path, flag="--report"
    )
    force: bool = option(False, "replace an existing version", parse_bool)
    fp16: bool = option(False, "also write model.fp16.onnx", parse_bool)
    int8: bool = option(
        False, "also write model.int8.onnx (static INT8, scales calibrated on images)", parse_bool
    )
    calib_images: Path | None = option(
        None,
        "folder the INT8 scales are calibrated on, e.g. the training split; default: the "
        "parity images",
        Path,
        metavar="DIR",
    )
    calib_count: int = option(384, "calibration images for --int8 (balanced real/fake)", int)
    int8_max_auc_drop: float = option(
        0.005,
        f"serve model.int8.onnx by default (metadata serve_precision) when its ROC-AUC on at "
        f"least {GATE_MIN_IMAGES} labelled parity images is at most this much below FP32's",
        float,
    )
    int8_min_agreement: float = option(
        0.995, "serve INT8 only when at least this share of per-image verdicts equal FP32's", float
    )
    int8_max_p99_diff: float = option(
        0.02, "serve INT8 only when the 99th percentile of |Δp| against FP32 is at most this", float
    )
    parity_images: Path | None = option(
        None,
        "folder of images for the parity check (labelled if in real/ and fake/); "
        "default: seeded synthetic images",
        Path,
        metavar="DIR",
    )
    parity_count: int = option(16, "images to compare", int)
    parity_batch: int = option(7, "batch size besides 1 (odd: exercises the dynamic axis)", int)
    tolerance: float = option(DEFAULT_TOLERANCE, "max |Δp| Keras vs ONNX", float)
    opset: int = option(DEFAULT_OPSET, f"ONNX opset (>= {MIN_OPSET})", int)
    optimization: str = option(
        "extended",
        "onnxruntime graph optimisation saved into model.onnx",
        choices=OPTIMIZATION_LEVELS,
    )
    training_data: str | None = option(
        None, "honest description of the training data", metavar="TEXT"
    )
    seed: int = option(0, "seed of the synthetic parity images", int)
    progress: bool = option(True, "show a progress bar", parse_bool)

    def __post_init__(self) -> None:
        if self.opset < MIN_OPSET:
            raise ValueError(f"--opset must be >= {MIN_OPSET}, got {self.opset}")
        if self.optimization not in OPTIMIZATION_LEVELS:
            raise ValueError(
                f"--optimization must be one of {', '.join(OPTIMIZATION_LEVELS)}, "
                f"got {self.optimization!r}"
            )
        if self.parity_count < 1:
            raise ValueError(f"--parity-count must be >= 1, got {self.parity_count}")
        if self.calib_count < 1:
            raise ValueError(f"--calib-count must be >= 1, got {self.calib_count}")
        if not self.int8_max_auc_drop >= 0:
            raise ValueError(f"--int8-max-auc-drop must be >= 0, got {self.int8_max_auc_drop}")
        if self.parity_batch < 2:
            raise ValueError(f"--parity-batch must be >= 2, got {self.parity_batch}")
        if not self.tolerance > 0:
            raise ValueError(f"--tolerance must be positive, got {self.tolerance}")


def run_export_command(
    parser: argparse.ArgumentParser,
    config: type[C],
    argv: Sequence[str] | None,
    action: Callable[[C], str],
    *,
    failed: str,
) -> int:
    """``action`` on the config parsed from ``argv``, printing what it returns: exit 2 for a
    value out of its range, an :class:`ExportError`'s exit code (after ``failed: reason``)."""
    try:
        settings = options_from(config, parser.parse_args(argv))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        print(action(settings))
    except ExportError as exc:
        print(f"{failed}: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0
