"""The ``soak`` subcommand of ``python -m benchmarks``: its arguments and its command."""

from __future__ import annotations

from pathlib import Path

from benchmarks.soak.config import DEFAULT_OUT, README, SoakConfig
from benchmarks.soak.report import CASES_FILE, soak_line, update_readme
from benchmarks.soak.run import run_soak


def add_soak_parser(commands) -> None:
    """The ``soak`` subcommand of ``python -m benchmarks``."""
    from benchmarks import soak as package  # its docstring describes the soak

    soak = commands.add_parser(
        "soak",
        help="minutes of mixed good/bad traffic against a real server: lost/mismatched "
        "answers, errors by status, server memory; writes benchmarks/results/soak-*.json",
        description=package.__doc__.split("\n\n")[1],
    )
    soak.add_argument(
        "--duration",
        type=float,
        default=180.0,
        help="seconds of traffic after the warm-up (default 180)",
    )
    soak.add_argument(
        "--warmup",
        type=float,
        default=20.0,
        help="seconds of traffic before the memory baseline (default 20, at most "
        "a third of --duration)",
    )
    soak.add_argument("--concurrency", type=int, default=8, help="clients (default 8)")
    soak.add_argument(
        "--bad-fraction", type=float, default=0.3, help="share of hostile requests (default 0.3)"
    )
    soak.add_argument(
        "--memory-bound-mb",
        type=float,
        default=50.0,
        help="allowed RSS growth from after the warm-up to the end (default 50)",
    )
    soak.add_argument(
        "--models",
        type=Path,
        default=Path("models"),
        help="model repository (default models; without a servable --model "
        "there, a synthetic stand-in model is served)",
    )
    soak.add_argument("--model", default="cnn", help="model name (default cnn)")
    soak.add_argument("--synthetic", action="store_true", help="always use the stand-in model")
    soak.add_argument("--seed", type=int, default=0, help="traffic mix seed (default 0)")
    soak.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra flag for the server (repeat; --server-arg=--workers=2)",
    )
    soak.add_argument(
        "--access",
        action="store_true",
        help="API keys and rate limits on (--rate, --burst), requests without or with a wrong "
        "key, a client flooding over its rate (--flood-rate), --slow-clients slow-header "
        "connections; good clients paced at --client-rate",
    )
    defaults = SoakConfig()
    for flag, kind, value, text in (
        ("--rate", float, defaults.rate, "the server's --rate with --access"),
        ("--burst", int, defaults.burst, "the server's --burst with --access"),
        ("--client-rate", float, defaults.client_rate, "each good client's requests/s"),
        ("--flood-rate", float, defaults.flood_rate, "the flooding client's requests/s"),
        ("--slow-clients", int, defaults.slow_clients, "slow-header connections held open"),
    ):
        soak.add_argument(flag, type=kind, default=value, help=f"{text} (default {value:g})")
    soak.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    soak.add_argument("--machine", help="machine label in the file name (default: from the CPU)")
    soak.add_argument(
        "--no-readme",
        action="store_true",
        help="do not regenerate the Reliability section of docs/RELIABILITY.md",
    )
    soak.add_argument(
        "--readme-only",
        action="store_true",
        help="only regenerate docs/RELIABILITY.md's section from the existing results",
    )


def cmd_soak(args) -> int:
    """Run the soak (or only re-render the README); exit 1 if the soak failed."""
    if args.readme_only:
        if not update_readme(README, args.out):
            print(f"error: need {args.out / CASES_FILE} and the markers in {README}")
            return 2
        print(f"regenerated the Reliability section of {README}")
        return 0
    if args.duration <= 0 or args.concurrency < 1 or not 0 <= args.bad_fraction <= 1:
        print("error: --duration > 0, --concurrency >= 1 and 0 <= --bad-fraction <= 1")
        return 2
    try:
        config = _config(args)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    results, path = run_soak(config)
    print(soak_line(results))
    print(f"results: {path}")
    for problem in results["problems"]:
        print(f"  problem: {problem}")
    return 0 if results["passed"] else 1


def _config(args) -> SoakConfig:
    return SoakConfig(
        models=args.models,
        model=args.model,
        synthetic=args.synthetic,
        duration_s=args.duration,
        warmup_s=args.warmup,
        concurrency=args.concurrency,
        bad_fraction=args.bad_fraction,
        memory_bound_mb=args.memory_bound_mb,
        seed=args.seed,
        server_args=tuple(args.server_arg),
        out_dir=args.out,
        machine_name=args.machine,
        readme=None if args.no_readme else README,
        access=args.access,
        rate=args.rate,
        burst=args.burst,
        client_rate=args.client_rate,
        flood_rate=args.flood_rate,
        slow_clients=args.slow_clients,
    )
