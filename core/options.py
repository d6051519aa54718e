"""Options declared once: a dataclass field carries its flag, help text and parser.

A configuration dataclass declares each setting with :func:`option`; :func:`add_options`
turns its fields into command-line flags (``max_batch_size`` -> ``--max-batch-size``) and
:func:`options_from` builds the dataclass from the parsed flags, so a default, a help text
or a bound is written in one place only (Starlette's ``Config`` and Triton's model config
work the same way). A command that also reads the environment passes ``env_prefix``: the
field ``max_batch_size`` is then also ``DFD_MAX_BATCH_SIZE``, a flag beats a variable and a
variable beats the default.

Values are parsed from text by one function per type (:func:`parse_bool`,
:func:`parse_ints`, ...). Boolean fields are ``--name`` / ``--no-name`` on the command line
and ``true`` / ``false`` in the environment.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

C = TypeVar("C")
MISSING: Any = dataclasses.MISSING


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def parse_ints(text: str) -> tuple[int, ...]:
    """``"8,16,32"`` -> ``(8, 16, 32)``."""
    return tuple(int(part) for part in text.split(",") if part.strip())


def parse_floats(text: str) -> tuple[float, ...]:
    """``"0.1,1.5"`` -> ``(0.1, 1.5)``."""
    return tuple(float(part) for part in text.split(",") if part.strip())


def parse_names(text: str) -> tuple[str, ...]:
    """``"lite0, CNN"`` -> ``("lite0", "cnn")``: names are compared in lower case."""
    return tuple(part.strip().lower() for part in text.split(",") if part.strip())


def parse_optional_path(text: str) -> Path | None:
    """A path, or ``None`` for an empty text or ``none``."""
    return None if text.strip().lower() in ("", "none") else Path(text)


def parse_optional_str(text: str) -> str | None:
    return text.strip() or None


def parse_optional_int(text: str) -> int | None:
    return int(text) if text.strip() else None


METAVARS: dict[Callable[[str], Any], str] = {
    int: "N",
    float: "X",
    Path: "PATH",
    parse_optional_path: "PATH",
    parse_optional_int: "N",
    parse_ints: "N,N,...",
    parse_floats: "X,X,...",
    parse_names: "NAME,NAME,...",
}


def option(
    default: Any = MISSING,
    help: str = "",
    parse: Callable[[str], Any] = str,
    *,
    flag: str | None = None,
    choices: Sequence[str] | None = None,
    metavar: str | None = None,
) -> Any:
    """A dataclass field that is also a command-line option (no default: a required one)."""
    metadata = {"help": help, "parse": parse, "flag": flag, "choices": choices, "metavar": metavar}
    return dataclasses.field(default=default, metadata=metadata)


def check_at_least(config: object, bound: float, *names: str) -> None:
    """ValueError naming the config, the field, its value and ``bound`` for the first of
    ``names`` that is (or, for a tuple, holds) a number under ``bound``; ``None`` passes."""
    for name in names:
        value = getattr(config, name)
        values = value if isinstance(value, tuple) else (value,)
        if any(item is not None and item < bound for item in values):
            raise ValueError(
                f"{type(config).__name__}.{name} must be at least {bound:g}, got {value}"
            )


def check_positive(config: object, *names: str) -> None:
    """ValueError naming the config, the field and its value for the first of ``names`` that
    is not above 0 (``None`` passes)."""
    for name in names:
        value = getattr(config, name)
        if value is not None and not value > 0:
            raise ValueError(f"{type(config).__name__}.{name} must be positive, got {value}")


def check_choice(config: object, name: str, choices: Sequence[str]) -> None:
    value = getattr(config, name)
    if value not in choices:
        raise ValueError(
            f"{type(config).__name__}.{name} must be one of {', '.join(choices)}, got {value!r}"
        )


def same_option(config: type, name: str) -> Any:
    """The option ``name`` of ``config`` declared again, unchanged (default, help, parser),
    where a larger config carries it: the server's flags for its batcher's settings."""
    item = next(item for item in dataclasses.fields(config) if item.name == name)
    return dataclasses.field(default=item.default, metadata=item.metadata)


def is_option(item: dataclasses.Field) -> bool:
    return "parse" in item.metadata


def flag_of(item: dataclasses.Field) -> str:
    return item.metadata["flag"] or "--" + item.name.replace("_", "-")


def env_name(prefix: str, field_name: str) -> str:
    return prefix + field_name.upper()


def render(value: Any) -> str:
    """A value as the text its flag or environment variable would hold."""
    if value is None or value is MISSING:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def _where(item: dataclasses.Field, env_prefix: str | None) -> str:
    return flag_of(item) + (f" / {env_name(env_prefix, item.name)}" if env_prefix else "")


def parse_value(item: dataclasses.Field, value: Any, env_prefix: str | None = None) -> Any:
    """The field's value from its text (booleans may already be parsed by argparse)."""
    if not isinstance(value, str):
        return value
    try:
        parsed = item.metadata["parse"](value)
    except ValueError as exc:
        raise ValueError(f"{_where(item, env_prefix)}: {exc}") from None
    choices = item.metadata["choices"]
    if choices and parsed not in choices:
        raise ValueError(
            f"{_where(item, env_prefix)}: {value!r} is not one of {', '.join(choices)}"
        )
    return parsed


def _help(item: dataclasses.Field, shown: str, env_prefix: str | None) -> str:
    text = item.metadata["help"]
    if env_prefix:
        default = f"; default {shown}" if shown else ""
        return f"{text} [env {env_name(env_prefix, item.name)}{default}]"
    return f"{text} (default: {shown})" if shown else text


def add_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    config: type,
    *,
    exclude: Sequence[str] = (),
    env_prefix: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """One flag per :func:`option` field of ``config`` (defaults from ``environ`` if given)."""
    environ = environ or {}
    for item in dataclasses.fields(config):
        if not is_option(item) or item.name in exclude:
            continue
        default = item.default
        if env_prefix and env_name(env_prefix, item.name) in environ:
            default = environ[env_name(env_prefix, item.name)]
        shown = render(default)
        kwargs: dict[str, Any] = {"dest": item.name, "help": _help(item, shown, env_prefix)}
        if item.metadata["parse"] is parse_bool:
            value = default if isinstance(default, bool) else parse_value(item, default, env_prefix)
            kwargs |= {"action": argparse.BooleanOptionalAction, "default": value}
        elif default is MISSING:
            kwargs |= {"required": True, "metavar": _metavar(item)}
        else:
            kwargs |= {"default": shown if default is not None else None, "metavar": _metavar(item)}
        parser.add_argument(flag_of(item), **kwargs)


def options_parser(
    prog: str, description: str, config: type, *, epilog: str | None = None
) -> argparse.ArgumentParser:
    """A command's parser: its description and epilog as written, one flag per option field
    of ``config``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(parser, config)
    return parser


def _metavar(item: dataclasses.Field) -> str:
    if item.metadata["metavar"]:
        return item.metadata["metavar"]
    if item.metadata["choices"]:
        return "{" + ",".join(item.metadata["choices"]) + "}"
    return METAVARS.get(item.metadata["parse"], "TEXT")


def options_from(
    config: type[C], namespace: argparse.Namespace, env_prefix: str | None = None, **values: Any
) -> C:
    """``config`` built from the parsed flags of its option fields, plus ``values``.

    Raises ``ValueError`` naming the flag for a value that does not parse, and whatever
    ``config``'s own checks raise."""
    for item in dataclasses.fields(config):
        if is_option(item) and item.name not in values and hasattr(namespace, item.name):
            raw = getattr(namespace, item.name)
            if raw is not None:
                values[item.name] = parse_value(item, raw, env_prefix)
    return config(**values)


def options_from_env(config: type[C], env_prefix: str, environ: Mapping[str, str]) -> C:
    """``config`` from the ``env_prefix`` variables present in ``environ``, else defaults."""
    values = {
        item.name: parse_value(item, environ[env_name(env_prefix, item.name)], env_prefix)
        for item in dataclasses.fields(config)
        if is_option(item) and env_name(env_prefix, item.name) in environ
    }
    return config(**values)


def to_env(config: Any, env_prefix: str) -> dict[str, str]:
    """Every option field of ``config`` as a variable (how worker processes get the config)."""
    return {
        env_name(env_prefix, item.name): render(getattr(config, item.name))
        for item in dataclasses.fields(config)
        if is_option(item)
    }


def parse_config(
    parser: argparse.ArgumentParser, config: type[C], argv: Sequence[str] | None, **values: Any
) -> C:
    """Parse ``argv`` into ``config``; a bad value exits with status 2 and names the flag."""
    namespace = parser.parse_args(argv)
    try:
        return options_from(config, namespace, **values)
    except ValueError as exc:
        parser.error(str(exc))
        raise  # unreachable: parser.error exits
