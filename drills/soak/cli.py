"""The ``soak`` subcommand of ``python -m drills``: its arguments and its command."""

from __future__ import annotations

from benchmarks.cli import add_command
from core.options import options_from
from drills.soak.config import README, SoakConfig, SoakFlags
from drills.soak.report import CASES_FILE, soak_line, update_readme
from drills.soak.run import run_soak


def add_soak_parser(commands) -> None:
    """The ``soak`` subcommand of ``python -m drills``."""
    from drills import soak as package  # its docstring describes the soak

    add_command(
        commands, "soak", description=package.__doc__.split("\n\n")[1],
        help="minutes of mixed good/bad traffic against a real server: lost/mismatched "
        "answers, errors by status, server memory; writes benchmarks/results/soak-*.json",
        configs=(SoakConfig, SoakFlags), server_arg="--workers=2",
    )  # fmt: skip


def cmd_soak(args) -> int:
    """Run the soak (or only re-render the README); exit 1 if the soak failed."""
    flags = options_from(SoakFlags, args)
    if flags.readme_only:
        if not update_readme(README, args.out_dir):
            print(f"error: need {args.out_dir / CASES_FILE} and the markers in {README}")
            return 2
        print(f"regenerated the Reliability section of {README}")
        return 0
    try:
        config = options_from(
            SoakConfig, args, server_args=tuple(args.server_args),
            readme=README if flags.readme else None,
        )  # fmt: skip
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    results, path = run_soak(config)
    print(soak_line(results))
    print(f"results: {path}")
    for problem in results["problems"]:
        print(f"  problem: {problem}")
    return 0 if results["passed"] else 1
