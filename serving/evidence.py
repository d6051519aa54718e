"""The ``evidence`` section of prediction answers (docs/CONTRACTS.md): provenance findings
read by :mod:`core.provenance` from each upload's original bytes on the thread pool, kept
beside the model's probability, never mixed into it."""

from __future__ import annotations

from serving.state import ServingState


async def read_evidence(state: ServingState, uploads: list[bytes]) -> list[dict]:
    """One ``{"evidence": [...]}`` section per upload (``{}`` each when evidence is off)."""
    reader = state.evidence
    if reader is None:
        return [{} for _ in uploads]
    found = await state.run_blocking(lambda: [reader.read(data) for data in uploads])
    return [{"evidence": findings} for findings in found]
