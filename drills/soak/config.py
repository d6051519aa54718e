"""The soak's settings: one frozen dataclass, stored in every results file; each setting
is one flag of ``python -m drills soak`` (:mod:`core.options`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.cli import DEFAULT_OUT
from core.options import option, parse_bool, parse_optional_str

README = Path("docs/RELIABILITY.md")


@dataclass(frozen=True)
class SoakConfig:
    """One soak run (stored in its results file)."""

    models: Path = option(
        Path("models"), "model repository (without a servable --model there, a synthetic "
        "stand-in model is served)", Path,
    )  # fmt: skip
    model: str | None = option(
        None, "model name (default: the server's, texture, else lite0, else the first)",
        parse_optional_str,
    )  # fmt: skip
    synthetic: bool = option(False, "always use the stand-in model", parse_bool)
    duration_s: float = option(
        180.0, "seconds of traffic after the warm-up", float, flag="--duration"
    )
    warmup_s: float = option(
        20.0, "seconds of traffic before the memory baseline (at most a third of --duration)",
        float, flag="--warmup",
    )  # fmt: skip
    concurrency: int = option(8, "clients", int)
    bad_fraction: float = option(0.3, "share of hostile requests", float)
    memory_bound_mb: float = option(
        50.0, "allowed RSS growth from after the warm-up to the end", float
    )
    sample_every_s: float = 0.5
    request_timeout_s: float = 30.0
    seed: int = option(0, "traffic mix seed", int)
    server_args: tuple[str, ...] = ()
    out_dir: Path = option(DEFAULT_OUT, "results folder", Path, flag="--out")
    machine_name: str | None = option(
        None, "machine label in the file name (default: from the CPU)", parse_optional_str,
        flag="--machine",
    )  # fmt: skip
    readme: Path | None = README  # regenerate its Reliability section (None: leave it)
    # --access: API keys and rate limits on, auth-hostile requests, a flooding client and
    # slow-header connections alongside (serving/auth.py, ratelimit.py, protocol.py)
    access: bool = option(
        False,
        "API keys and rate limits on (--rate, --burst), requests without or with a wrong key, "
        "a client flooding over its rate (--flood-rate), --slow-clients slow-header "
        "connections; good clients paced at --client-rate",
        parse_bool,
    )
    rate: float = option(20.0, "the server's --rate with --access (tokens/s per key)", float)
    burst: int = option(40, "the server's --burst with --access", int)
    client_rate: float = option(
        3.0, "each good client's requests/s with --access (well under --rate)", float
    )
    flood_rate: float = option(
        40.0, "the flooding client's requests/s with --access (over --rate: it gets 429s)", float
    )
    slow_clients: int = option(
        50, "slow-header connections held open throughout with --access", int
    )
    header_timeout_s: float = 10.0  # the server's --header-timeout-s with --access

    def __post_init__(self) -> None:
        if self.duration_s <= 0 or self.concurrency < 1 or not 0 <= self.bad_fraction <= 1:
            raise ValueError(
                "--duration > 0, --concurrency >= 1 and 0 <= --bad-fraction <= 1, got "
                f"{self.duration_s:g}, {self.concurrency}, {self.bad_fraction:g}"
            )
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


@dataclass(frozen=True)
class SoakFlags:
    """What ``python -m drills soak`` does besides the soak itself."""

    readme: bool = option(
        True, f"regenerate the Reliability section of {README} from the results", parse_bool
    )
    readme_only: bool = option(
        False, f"only regenerate {README}'s section from the existing results", parse_bool
    )
