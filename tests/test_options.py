"""core.options: a dataclass field declares its flag, environment variable, help and parser."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.options import (
    add_options,
    option,
    options_from,
    options_from_env,
    parse_bool,
    parse_config,
    parse_floats,
    parse_ints,
    parse_names,
    to_env,
)


@dataclass(frozen=True)
class Example:
    source: Path = option(help="where to read", parse=Path)
    batch_size: int = option(8, "rows per run", int)
    sizes: tuple[int, ...] = option((1, 8), "warm-up sizes", parse_ints)
    fast: bool = option(False, "go fast", parse_bool)
    level: str = option("basic", "how hard", choices=("basic", "all"))
    renamed: float = option(0.5, "a field whose flag differs", float, flag="--share")
    derived: int = 0  # not an option: never a flag

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")


def parser(environ: dict[str, str] | None = None, prefix: str | None = None):
    built = argparse.ArgumentParser(prog="example")
    add_options(built, Example, env_prefix=prefix, environ=environ)
    return built


def test_each_field_is_one_flag_with_its_default_and_help():
    text = parser().format_help()
    for flag in ("--source", "--batch-size", "--sizes", "--fast", "--no-fast", "--level",
                 "--share"):  # fmt: skip
        assert flag in text
    assert "--derived" not in text and "--renamed" not in text
    assert "rows per run (default: 8)" in text
    config = options_from(Example, parser().parse_args(["--source", "a"]))
    assert config == Example(source=Path("a"))


def test_values_are_parsed_by_their_type():
    argv = ["--source", "in", "--batch-size", "4", "--sizes", "2,4", "--fast", "--level", "all"]
    config = options_from(Example, parser().parse_args([*argv, "--share", "0.25"]))
    assert config == Example(Path("in"), 4, (2, 4), True, "all", 0.25)
    assert options_from(Example, parser().parse_args(["--source", "x", "--no-fast"])).fast is False


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--batch-size", "four"], "--batch-size: invalid literal"),
        (["--sizes", "1,x"], "--sizes: invalid literal"),
        (["--batch-size", "0"], "batch_size must be at least 1, got 0"),
    ],
)
def test_bad_values_name_the_flag(argv, message):
    with pytest.raises(ValueError, match=message):
        options_from(Example, parser().parse_args(["--source", "s", *argv]))


def test_bad_values_exit_2_through_parse_config(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(parser(), Example, ["--source", "s", "--batch-size", "0"])
    assert exit_info.value.code == 2
    assert "batch_size must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_config(parser(), Example, ["--batch-size", "3"])  # --source is required
    assert "--source" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_config(parser(), Example, ["--source", "s", "--level", "max"])
    assert "is not one of basic, all" in capsys.readouterr().err


def test_flags_beat_environment_beat_defaults():
    environ = {"X_BATCH_SIZE": "16", "X_FAST": "true", "X_SOURCE": "env-source"}
    built = parser(environ, "X_")
    assert "[env X_BATCH_SIZE; default 16]" in built.format_help()
    from_env = options_from(Example, built.parse_args([]), env_prefix="X_")
    assert (from_env.batch_size, from_env.fast, from_env.source) == (16, True, Path("env-source"))
    flagged = options_from(Example, built.parse_args(["--batch-size", "2", "--no-fast"]))
    assert (flagged.batch_size, flagged.fast) == (2, False)


def test_environment_round_trip():
    config = Example(source=Path("p"), sizes=(3,), fast=True, level="all")
    environ = to_env(config, "X_")
    assert environ["X_SIZES"] == "3" and environ["X_FAST"] == "true" and "X_DERIVED" not in environ
    assert options_from_env(Example, "X_", environ) == config
    with pytest.raises(ValueError, match="--batch-size / X_BATCH_SIZE"):
        options_from_env(Example, "X_", {**environ, "X_BATCH_SIZE": "many"})


def test_one_parser_per_value_type():
    assert parse_ints("8, 16,32") == (8, 16, 32)
    assert parse_floats("0.1,1.5") == (0.1, 1.5)
    assert parse_names("Lite0, cnn,") == ("lite0", "cnn")
    assert [parse_bool(text) for text in ("yes", "TRUE", "1", "off", "false", "0")] == [
        True, True, True, False, False, False,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="expected true or false"):
        parse_bool("maybe")
