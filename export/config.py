"""Export settings and the errors the export CLIs turn into clear messages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_OPSET = 17
MIN_OPSET = 17
DEFAULT_TOLERANCE = 1e-4
OPTIMIZATION_LEVELS = ("basic", "extended", "all")


class ExportError(Exception):
    """A problem the user can fix (bad path, existing version, failed parity...)."""

    exit_code = 1


class ParityError(ExportError):
    """ONNX Runtime does not reproduce the Keras model within tolerance."""


@dataclass(frozen=True)
class ExportConfig:
    """Everything one ``python -m export`` run needs."""

    model_path: Path
    name: str
    repo: Path = Path("models")
    version: int | None = None  # None: next free integer
    report_path: Path | None = None
    force: bool = False
    fp16: bool = False
    int8: bool = False
    parity_images: Path | None = None  # None: seeded synthetic images
    parity_count: int = 16
    parity_batch: int = 7  # an odd batch size > 1 that exercises the dynamic axis
    tolerance: float = DEFAULT_TOLERANCE
    opset: int = DEFAULT_OPSET
    optimization: str = "extended"
    training_data: str | None = None
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.opset < MIN_OPSET:
            raise ExportError(f"--opset must be >= {MIN_OPSET}, got {self.opset}")
        if self.optimization not in OPTIMIZATION_LEVELS:
            raise ExportError(
                f"--optimization must be one of {', '.join(OPTIMIZATION_LEVELS)}, "
                f"got {self.optimization!r}"
            )
        if self.parity_count < 1:
            raise ExportError(f"--parity-count must be >= 1, got {self.parity_count}")
        if self.parity_batch < 2:
            raise ExportError(f"--parity-batch must be >= 2, got {self.parity_batch}")
        if not self.tolerance > 0:
            raise ExportError(f"--tolerance must be positive, got {self.tolerance}")
