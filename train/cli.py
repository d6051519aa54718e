"""What the ``python -m train.*`` commands share besides their parser
(:func:`core.options.options_parser`): a ``main`` that turns a bad option or dataset into
exit status 2 with the reason, and prints the result's summary as JSON lines."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from train.files import DatasetError

T = TypeVar("T")
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def run_command(
    action: Callable[[], T],
    summary: Callable[[T], list[dict]],
    *,
    errors: tuple[type[Exception], ...] = (ValueError, DatasetError),
    log: logging.Logger | None = None,
) -> int:
    """Run ``action``; print each of ``summary(result)`` as one JSON line and return 0, or
    report one of ``errors`` (on stderr, or through ``log``) and return 2."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    try:
        result = action()
    except errors as exc:  # a bad option, dataset or path
        if log is not None:
            log.error("%s", exc)
        else:
            print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in summary(result):
        print(json.dumps(line))
    return 0
