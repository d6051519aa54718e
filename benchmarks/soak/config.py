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
    # --access: API keys and rate limits on, auth-hostile requests, a flooding client and
    # slow-header connections alongside (serving/auth.py, ratelimit.py, protocol.py)
    access: bool = False
    rate: float = 20.0  # the server's --rate (tokens/s per key)
    burst: int = 40  # the server's --burst
    client_rate: float = 3.0  # each good client's pace (requests/s), well under --rate
    flood_rate: float = 40.0  # the flooding client's pace, over --rate: it must get 429s
    slow_clients: int = 50  # slow-header connections held open throughout
    header_timeout_s: float = 10.0  # the server's --header-timeout-s with --access

    def __post_init__(self) -> None:
        if self.access and not 0 < self.client_rate <= self.rate / 2:
            raise ValueError(
                f"client_rate must be in (0, rate / 2] so good clients are never limited, got "
                f"{self.client_rate} with rate {self.rate}"
            )
        if self.access and self.flood_rate <= self.rate:
            raise ValueError(f"flood_rate must exceed rate {self.rate}, got {self.flood_rate}")

    def to_json(self) -> dict:
        values = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}
