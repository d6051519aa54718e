"""How the face search's shortcuts change the crops, and what they save.

Two comparisons:

* ``min_face_fraction``: the full search down to a tenth of the shorter side against the full
  search down to a quarter (the contract's smallest face);
* ``two_pass``: that full search against the served search, which looks for large faces
  first (``core.facecrop.largest_face``).

    python scripts/compare_face_search.py              # -> reports/facecrop/face_search.json

Boxes are compared exactly; a changed box changes the model input, an unchanged one cannot.
For the changed ones the served default model's |change in probability| is given, and for
``two_pass`` its test ROC-AUC with either search.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from core import facecrop
from core.modelrepo import ModelRepository
from core.preprocessing import FACE_DRAFT_FACTOR, INPUT_SIZE, open_image, resize_rgb, to_rgb
from train.files import list_split

ORIGINALS = Path("../shared/data/real-faces")
GENERATED = Path("data/gan/images")
Region = tuple[int, int, int, int] | None
Search = Callable[[np.ndarray], Region]


def decoded(path: Path) -> np.ndarray:
    """The image as the face crop sees it (the contract's draft decode)."""
    data = path.read_bytes()
    return np.asarray(to_rgb(open_image(data, draft_size=INPUT_SIZE * FACE_DRAFT_FACTOR)))


def searches(reference_fraction: float) -> dict[str, Search]:
    """The searches compared, by name."""
    return {
        f"full_{reference_fraction:g}": lambda rgb: facecrop.face_region(
            rgb, exhaustive=True, min_fraction=reference_fraction
        ),
        f"full_{facecrop.MIN_FACE_FRACTION:g}": lambda rgb: facecrop.face_region(
            rgb, exhaustive=True
        ),
        "two_pass": facecrop.face_region,
    }


def run_searches(images: list[np.ndarray], named: dict[str, Search], label: str) -> dict:
    """Per search: its regions and ms per image (one thread: a stable per-image cost)."""
    facecrop.import_cv2().setNumThreads(1)
    found = {}
    for name, search in named.items():
        started = time.perf_counter()
        regions = [search(rgb) for rgb in tqdm(images, desc=f"{label} {name}", unit="img")]
        ms = (time.perf_counter() - started) * 1000.0 / max(1, len(images))
        found[name] = {"regions": regions, "ms": ms}
    return found


def iou(a: Region, b: Region) -> float:
    """Intersection over union of two ``(top, bottom, left, right)`` regions."""
    if a is None or b is None:
        return float(a is None and b is None)
    height = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    width = max(0, min(a[3], b[3]) - max(a[2], b[2]))
    inter = height * width
    area = (a[1] - a[0]) * (a[3] - a[2]) + (b[1] - b[0]) * (b[3] - b[2]) - inter
    return inter / area


class Scorer:
    """The served default model's raw probability of model inputs cut by given regions."""

    def __init__(self) -> None:
        from serving.runtime import ModelRuntime, RuntimeConfig

        entry = ModelRepository(Path("models")).entry("lite0")
        self.size = entry.input_size
        self.runtime = ModelRuntime(entry, RuntimeConfig(providers=("cpu",), max_batch_size=64))

    def __call__(self, images: list[np.ndarray], regions: list[Region]) -> np.ndarray:
        rows = [
            resize_rgb(rgb if r is None else rgb[r[0] : r[1], r[2] : r[3]], self.size)
            for rgb, r in zip(images, regions, strict=True)
        ]
        out = [
            self.runtime.run(np.stack(rows[i : i + 64]).astype(np.float32))["probability_fake"]
            for i in range(0, len(rows), 64)
        ]
        return np.concatenate(out).ravel() if out else np.zeros(0)


def compare(images: list[np.ndarray], before: dict, after: dict, scorer: Scorer) -> dict:
    """How many regions ``after`` changes from ``before``, by how much, and what it saves."""
    pairs = list(zip(before["regions"], after["regions"], strict=True))
    changed = [i for i, (a, b) in enumerate(pairs) if a != b]
    overlaps = [iou(*pairs[i]) for i in changed]
    dprob = np.abs(
        scorer([images[i] for i in changed], [pairs[i][0] for i in changed])
        - scorer([images[i] for i in changed], [pairs[i][1] for i in changed])
    )
    return {
        "images": len(pairs),
        "identical_regions": len(pairs) - len(changed),
        "identical_fraction": round(1 - len(changed) / max(1, len(pairs)), 4),
        "faces_found": [sum(a is not None for a, _ in pairs), sum(b is not None for _, b in pairs)],
        "changed_min_iou": round(min(overlaps), 3) if overlaps else None,
        "ms_per_image": [round(before["ms"], 2), round(after["ms"], 2)],
        "speedup": round(before["ms"] / after["ms"], 2),
        "changed_max_abs_dprob": round(float(dprob.max()), 4) if len(dprob) else None,
        "mean_abs_dprob_all_images": round(float(dprob.sum()) / max(1, len(pairs)), 6),
    }


def roc_auc_each(
    labels: list[int], images: list[np.ndarray], regions: dict[str, list[Region]], scorer: Scorer
) -> dict:
    """The served model's test ROC-AUC with each search's regions."""
    return {
        name: round(float(roc_auc_score(labels, scorer(images, cut))), 5)
        for name, cut in regions.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=Path("data/detector"), help="dataset whose test split is used"
    )
    parser.add_argument("--originals", type=int, default=400, help="sampled original photos")
    parser.add_argument(
        "--reference", type=float, default=0.1, help="smallest-face fraction to compare with"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("reports/facecrop/face_search.json"), help="report"
    )
    args = parser.parse_args(argv)
    rng = random.Random(0)
    originals = sorted(ORIGINALS.rglob("*.jpg")) + sorted(GENERATED.glob("*.jpg"))
    test = list_split(args.data, "test")
    sets = {
        "test_split": [Path(path) for path in test.paths],
        "originals": rng.sample(originals, min(args.originals, len(originals))),
    }
    named = searches(args.reference)
    reference, contract, served = named
    scorer = Scorer()
    report: dict = {
        "searches": {
            reference: f"one search for faces >= {args.reference:g} of the shorter side",
            contract: f"one search for faces >= {facecrop.MIN_FACE_FRACTION:g} of the shorter side",
            served: f"faces >= {facecrop.FIRST_PASS_FRACTION:g} first, kept when >= "
            f"{facecrop.ACCEPT_FRACTION:g}; else the full search",
        },
        "model": "lite0 as served (its metadata's serve_precision)",
        "note": "one thread; identical regions give identical model inputs (|dp| = 0)",
    }
    for label, paths in sets.items():
        images = [decoded(path) for path in tqdm(paths, desc=f"decode {label}", unit="img")]
        found = run_searches(images, named, label)
        report[label] = {
            "min_face_fraction": compare(images, found[reference], found[contract], scorer),
            "two_pass": compare(images, found[contract], found[served], scorer),
        }
        if label == "test_split":
            regions = {name: found[name]["regions"] for name in (contract, served)}
            report[label]["roc_auc"] = roc_auc_each(test.labels, images, regions, scorer)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
