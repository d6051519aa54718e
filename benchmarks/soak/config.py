"""The soak's settings: one frozen dataclass, stored in every results file."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_OUT = Path("benchmarks/results")
README = Path("docs/RELIABILITY.md")


@dataclass(frozen=True)
class SoakConfig:
    """One soak run (stored in its results file)."""

    models: Path = Path("models")
    model: str = "cnn"
    synthetic: bool = False  # serve the stand-in model even if the repository has one
    duration_s: float = 180.0
    warmup_s: float = 20.0
    concurrency: int = 8
    bad_fraction: float = 0.3
    memory_bound_mb: float = 50.0
    sample_every_s: float = 0.5
    request_timeout_s: float = 30.0
    seed: int = 0
    server_args: tuple[str, ...] = ()
    out_dir: Path = DEFAULT_OUT
    machine_name: str | None = None
    readme: Path | None = README  # regenerate its Reliability section (None: leave it)

    def to_json(self) -> dict:
        values = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}
