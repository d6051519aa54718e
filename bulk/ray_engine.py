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


class ScoringActor:
    """A Ray Data actor: one session, then batches of ``{"path": [...]}`` -> result columns."""

    def __init__(self, choice: ModelChoice) -> None:
        self.scorer = Scorer(choice)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [flat(row) for row in self.scorer.score([str(path) for path in batch["path"]])]
        return {key: np.array([row[key] for row in rows], dtype=object) for key in COLUMNS}


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
            columns = {key: batch[key].tolist() for key in COLUMNS}
            rows = [dict(zip(COLUMNS, v, strict=True)) for v in zip(*columns.values(), strict=True)]
            for row in rows:  # evidence travelled as JSON text (a column of lists would not)
                row["evidence"] = json.loads(row["evidence"]) if row["evidence"] else None
            yield rows
    finally:
        if started_here:
            ray.shutdown()
