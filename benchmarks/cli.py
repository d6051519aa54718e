"""What every subcommand of ``python -m benchmarks`` shares: a parser whose flags come from
configuration dataclasses (:mod:`core.options`), checked when parsed, and the writing of a
results file named after the machine and the day."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.options import add_options, is_option, option, parse_value

DEFAULT_OUT = Path("benchmarks/results")


class OptionsParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that turns the flags of its configuration dataclasses into their
    values as it parses: a bad value exits with status 2 and names the flag, and the
    namespace holds numbers and tuples, not text (its subcommands' parsers do the same)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self.option_fields: list[dataclasses.Field] = []

    def add_config(
        self,
        config: type,
        *,
        group: argparse._ArgumentGroup | None = None,
        exclude: Sequence[str] = (),
    ) -> None:
        """One flag per option field of ``config`` (on ``group`` if given)."""
        add_options(group or self, config, exclude=exclude)
        self.option_fields += [
            item for item in dataclasses.fields(config)
            if is_option(item) and item.name not in exclude
        ]  # fmt: skip

    def parse_known_args(self, args=None, namespace=None):
        namespace, rest = super().parse_known_args(args, namespace)
        for item in self.option_fields:
            try:
                value = parse_value(item, getattr(namespace, item.name))
            except ValueError as exc:
                self.error(str(exc))
            setattr(namespace, item.name, value)
        return namespace, rest


def positive_ints(text: str) -> tuple[int, ...]:
    """``"1,4,16"`` -> ``(1, 4, 16)``; at least one value, each >= 1."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(value < 1 for value in values):
        raise ValueError(f"expected positive integers, got {text!r}")
    return values


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"expected a positive integer, got {text}")
    return value


def names_of(
    choices: Sequence[str] | None = None, *, allow_empty: bool = False
) -> Callable[[str], tuple[str, ...]]:
    """A parser of ``"a,b"`` into names, each one of ``choices`` when given."""

    def parse(text: str) -> tuple[str, ...]:
        values = tuple(part.strip() for part in text.split(",") if part.strip())
        if not values and not allow_empty:
            raise ValueError("expected at least one name")
        unknown = [value for value in values if choices and value not in choices]
        if unknown:
            raise ValueError(f"unknown {', '.join(unknown)}: choose from {', '.join(choices)}")
        return values

    return parse


def optional_names(text: str) -> tuple[str, ...] | None:
    """``"a,b"`` -> ``("a", "b")``; empty -> ``None`` (every one there is)."""
    return tuple(part.strip() for part in text.split(",") if part.strip()) or None


def add_command(
    commands,
    name: str,
    *,
    help: str,
    description: str | None = None,
    configs: Sequence[type] = (),
    exclude: Sequence[str] = (),
    server_arg: str | None = None,
) -> OptionsParser:
    """The subcommand ``name`` with one flag per option field of each of ``configs`` (less
    ``exclude``) and, given an example flag, ``--server-arg``."""
    parser = commands.add_parser(name, help=help, description=description)
    for config in configs:
        parser.add_config(config, exclude=exclude)
    if server_arg is not None:
        add_server_arg(parser, server_arg)
    return parser


def add_server_arg(parser: argparse.ArgumentParser, example: str = "--flag") -> None:
    """``--server-arg``, repeated: extra flags for the server the command starts."""
    parser.add_argument(
        "--server-arg", dest="server_args", action="append", default=[], metavar="ARG",
        help=f"extra flag for the server (repeat; --server-arg={example})",
    )  # fmt: skip


def parse_paths(text: str) -> tuple[Path, ...]:
    """``"a,b"`` -> ``(Path("a"), Path("b"))``."""
    return tuple(Path(part.strip()) for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class ResultsConfig:
    """Where a benchmark writes its results file."""

    out_dir: Path = option(DEFAULT_OUT, "results folder", Path, flag="--out")


def utc_stamp() -> str:
    """Now, as stored in results files: ``2026-11-30T12:00:00Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_results(
    out_dir: Path, kind: str, slug: str, report: dict, *, stamp_key: str = "created"
) -> Path:
    """``report`` as ``<out_dir>/<kind>-<slug>-<date of report[stamp_key]>.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{kind}-{slug}-{report[stamp_key][:10]}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    return path


def newest_results(
    out_dir: Path, pattern: str, stamp_key: str, needs: frozenset[str] = frozenset()
) -> tuple[Path, dict] | None:
    """The newest readable results file in ``out_dir`` matching ``pattern`` that holds every
    key in ``needs``, by ``stamp_key`` (then name): ``(path, results)``, or None."""
    found = []
    for path in out_dir.glob(pattern):
        try:
            results = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(results, dict) and needs <= results.keys():
            found.append((str(results.get(stamp_key, "")), path.name, path, results))
    if not found:
        return None
    _, _, path, results = max(found, key=lambda row: row[:2])  # names are unique
    return path, results
