"""``python -m drills``: the reliability drills (soak, slow clients)."""

from __future__ import annotations

import sys

from benchmarks.cli import OptionsParser
from drills import slowloris
from drills.soak.cli import add_soak_parser, cmd_soak

COMMANDS = {"soak": cmd_soak, "slowloris": slowloris.command}


def build_parser() -> OptionsParser:
    parser = OptionsParser(
        prog="python -m drills",
        description="Reliability drills against a real server: a soak of mixed good and "
        "hostile traffic, and slow-header clients beside normal load.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_soak_parser(commands)
    slowloris.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from benchmarks.servers import ServerStartError

    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ServerStartError, ConnectionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
