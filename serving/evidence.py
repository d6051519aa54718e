"""The ``evidence`` section of prediction answers (docs/CONTRACTS.md): provenance findings
read by :mod:`core.provenance` from each upload's original bytes, kept beside the model's
probability, never mixed into it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from serving.state import ServingState

T = TypeVar("T")


async def alongside(
    state: ServingState, uploads: list[bytes], work: Awaitable[T]
) -> tuple[T, list[dict]]:
    """``work`` (the model's preprocessing) and one ``{"evidence": [...]}`` section per upload
    (``{}`` when evidence is off). Uploads without any metadata block (most camera and web
    JPEGs) are recognised on the loop by a bounded walk of a few microseconds and cost
    nothing more; the others are read on the thread pool while ``work`` runs."""
    reader = state.evidence
    if reader is None:
        return await work, [{} for _ in uploads]
    sections = [{"evidence": []} for _ in uploads]
    todo = [index for index, data in enumerate(uploads) if not reader.nothing_to_read(data)]
    if not todo:
        return await work, sections
    result, found = await asyncio.gather(
        work, state.run_blocking(lambda: [reader.read(uploads[index]) for index in todo])
    )
    for index, findings in zip(todo, found, strict=True):
        sections[index]["evidence"] = findings
    return result, sections
