"""Query-string parameters: one parser per value type; 400 when malformed, 422 when out of
bounds (the message states the bound)."""

from __future__ import annotations

import math
from collections.abc import Callable

from starlette.datastructures import QueryParams

from serving.errors import bad_parameter, out_of_range

TRUE_WORDS = ("1", "true", "yes")
FALSE_WORDS = ("0", "false", "no")


def query_bool(query: QueryParams, name: str, default: bool | None = False) -> bool | None:
    """``true``/``false`` (also 1/0, yes/no); ``default`` when absent or empty."""
    text = query.get(name)
    if text in (None, ""):
        return default
    if text.lower() in TRUE_WORDS:
        return True
    if text.lower() in FALSE_WORDS:
        return False
    raise bad_parameter(f"{name} must be true or false, got {text!r}")


def query_choice(query: QueryParams, name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (case-insensitive); ``default`` when absent or empty."""
    value = (query.get(name) or default).lower()
    if value not in choices:
        raise bad_parameter(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def face_crop_flag(query: QueryParams) -> bool | None:
    """The ``face_crop`` query flag; None (absent) means the model's own contract."""
    return query_bool(query, "face_crop", None)


def _number(
    query: QueryParams, name: str, default, low, high, parse: Callable[[str], int | float], kind
):
    text = query.get(name)
    if text in (None, ""):
        return default
    try:
        value = parse(text)
    except ValueError:
        raise bad_parameter(f"{name} must be {kind}, got {text!r}") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise out_of_range(f"{name} must be between {low} and {high}, got {text}")
    return value


def query_int(query: QueryParams, name: str, default: int | None, low: int, high: int):
    """An integer in ``[low, high]``; ``default`` when absent or empty."""
    return _number(query, name, default, low, high, int, "an integer")


def query_float(query: QueryParams, name: str, default: float | None, low: float, high: float):
    """A finite number in ``[low, high]``; ``default`` when absent or empty."""
    return _number(query, name, default, low, high, float, "a number")
