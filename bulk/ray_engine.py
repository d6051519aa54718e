"""``--engine ray``: Ray Data reads the paths and scores them with ``map_batches`` on a pool of
actors, each holding one ``Scorer`` (one onnxruntime session). ``--ray-address`` joins an
existing cluster; without it Ray starts locally with ``workers`` CPUs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

import numpy as np

from bulk.outputs import COLUMNS, flat
from bulk.scorer import ModelChoice, Scorer

FRAMES_JSON = "frame_results_json"
TRANSFERRED = (*COLUMNS, FRAMES_JSON)


class ScoringActor:
    """A Ray Data actor: one session, then batches of ``{"path": [...]}`` -> result columns."""

    def __init__(self, choice: ModelChoice) -> None:
        self.scorer = Scorer(choice)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = []
        for row in self.scorer.score([str(path) for path in batch["path"]]):
            frames = row.pop("frame_results", None)  # lists travel as JSON text
            rows.append(flat(row) | {FRAMES_JSON: None if frames is None else json.dumps(frames)})
        return {key: _column([row[key] for row in rows]) for key in TRANSFERRED}


def _column(values: list) -> np.ndarray:
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def _row(values: dict) -> dict:
    """A result row back from Ray's columns (Ray turns an all-None column into NaNs)."""
    row = {key: None if value != value else value for key, value in values.items()}  # NaN
    row["evidence"] = json.loads(row["evidence"]) if row["evidence"] else None
    frames = row.pop(FRAMES_JSON)
    return row if frames is None else row | {"frame_results": json.loads(frames)}


def ray_engine(
    batches: Iterable[list[str]],
    choice: ModelChoice,
    workers: int,
    address: str | None = None,
    batch_size: int = 32,
) -> Iterator[list[dict]]:
    """Score every path with Ray Data; rows come back in batches as actors finish them."""
    import ray

    paths = [path for batch in batches for path in batch]  # 200,000 paths: about 20 MB
    if not paths:
        return
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        dataset = ray.data.from_items([{"path": path} for path in paths])
        scored = dataset.map_batches(
            ScoringActor,
            fn_constructor_args=(choice,),
            batch_size=batch_size,
            concurrency=workers,
            num_cpus=1,
            batch_format="numpy",
        )
        for batch in scored.iter_batches(batch_size=32, batch_format="numpy"):
            columns = {key: batch[key].tolist() for key in TRANSFERRED}
            yield [
                _row(dict(zip(TRANSFERRED, values, strict=True)))
                for values in zip(*columns.values(), strict=True)
            ]
    finally:
        if started_here:
            ray.shutdown()
