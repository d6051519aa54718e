"""Source-holdout folds: judge a detector by sources it never trained on.

Each fold leaves one real source or one fake family out of train and validation and keeps
all of its files for testing. A real source takes its own manipulated fakes with it (LFW
with its face swaps, Yonsei with its photoshopped edits): they carry that source's photos,
so training on them would teach what the held-out source looks like. Roles per fold:

* ``train`` / ``val``: the build's train / val split, held-out files removed;
* ``test``: the build's test split of every other source (the reference the held-out files
  are scored against: reals for a fake family's AUC, the threshold's own sources);
* ``heldout``: every file of the held-out source or family, whatever its split.

``python -m dataprep folds`` writes the file lists to ``DATASET/folds.json`` and counts with
a hash of each list to ``reports/data/folds.json``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

FOLDS_FILE = "folds.json"
ROLES = ("train", "val", "test", "heldout")


@dataclass(frozen=True)
class Fold:
    """One held-out source or family: the sources it removes from training."""

    name: str
    kind: str  # "real source" or "fake family"
    sources: tuple[str, ...]
    scored: str  # the class scored on the held-out files: "real" (flag rate) or "fake" (AUC)


FOLDS = (
    Fold("utkface", "real source", ("utkface",), "real"),
    Fold("scut-fbp5500", "real source", ("scut-fbp5500",), "real"),
    Fold("all-age-faces", "real source", ("all-age-faces",), "real"),
    Fold("celeba", "real source", ("celeba",), "real"),
    Fold("lfw", "real source", ("lfw", "lfw-faceswap"), "real"),
    Fold("yonsei", "real source", ("yonsei-real", "yonsei-photoshop"), "real"),
    Fold("mobilestylegan", "fake family", ("mobilestylegan",), "fake"),
    Fold("sd21", "fake family", ("sd21-sdfd",), "fake"),
    Fold("photoshop", "fake family", ("yonsei-photoshop",), "fake"),
    Fold("faceswap", "fake family", ("lfw-faceswap",), "fake"),
)


def fold_files(rows: list[dict], fold: Fold) -> dict[str, list[str]]:
    """The files of each role (sorted) for ``fold``."""
    roles: dict[str, list[str]] = {role: [] for role in ROLES}
    for row in rows:
        if row["source"] in fold.sources:
            roles["heldout"].append(row["file"])
        else:
            roles[row["split"]].append(row["file"])
    return {role: sorted(files) for role, files in roles.items()}


def list_hash(files: list[str]) -> str:
    return hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]


def make_folds(dataset: Path) -> dict:
    """Write ``dataset/folds.json`` (file lists per fold and role); returns the summary
    (counts per role and class, list hashes) for ``reports/data/folds.json``. Folds whose
    held-out sources are absent from the dataset are left out."""
    rows = json.loads((dataset / "manifest.json").read_text())["files"]
    by_file = {row["file"]: row for row in rows}
    present = {row["source"] for row in rows}
    lists, summary = {}, {}
    for fold in FOLDS:
        if not present & set(fold.sources):
            continue
        roles = fold_files(rows, fold)
        lists[fold.name] = roles
        summary[fold.name] = {
            "kind": fold.kind,
            "held_out_sources": [s for s in fold.sources if s in present],
            "scored_class": fold.scored,
            "counts": {
                role: {
                    cls: sum(1 for f in files if by_file[f]["class"] == cls)
                    for cls in ("real", "fake")
                }
                for role, files in roles.items()
            },
            "sha256": {role: list_hash(files) for role, files in roles.items()},
        }
    (dataset / FOLDS_FILE).write_text(json.dumps(lists))
    return {
        "dataset": str(dataset),
        "rule": "a held-out source's files (all splits) never enter train or val; a real "
        "source takes its own manipulated fakes out with it",
        "folds": summary,
    }


def load_folds(dataset: Path) -> dict[str, dict[str, list[str]]]:
    """``{fold: {role: [file, ...]}}`` as written by :func:`make_folds`."""
    path = dataset / FOLDS_FILE
    if not path.exists():
        raise SystemExit(f"error: {path} not found: run python -m dataprep folds")
    return json.loads(path.read_text())
