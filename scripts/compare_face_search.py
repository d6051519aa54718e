"""The face detector before and after: OpenCV's Haar cascade (two-pass search) against YuNet.

Both on the same images, one thread each: faces found, ms per image, how far the crops
differ (IoU of the regions, where both found a face), and the served default model's test
ROC-AUC with either detector's crops.

    python scripts/compare_face_search.py              # -> reports/facecrop/face_search.json

The Haar search is kept here, as it was served (faces >= 0.35 of the shorter side first,
kept when >= 0.45, else down to 0.25; a 400 px grey copy; 0.25 margin), only as the
reference this report compares with.
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


def haar_region(
    rgb: np.ndarray, cascade, two_pass: bool = True, min_fraction: float = 0.25
) -> Region:
    """The Haar cascade's region as served before YuNet (module docstring); without
    ``two_pass``, one search down to ``min_fraction`` (as served before that)."""
    cv2 = facecrop.import_cv2()
    height, width = rgb.shape[:2]
    scale = min(1.0, 400 / max(height, width))
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    shorter = min(height, width)

    def search(fraction: float) -> list:
        smallest = max(20, int(fraction * shorter * scale))
        boxes = cascade.detectMultiScale(grey, 1.1, 5, minSize=(smallest, smallest))
        found = [tuple(int(round(v / scale)) for v in box) for box in boxes]
        return sorted(found, key=lambda b: (-b[2] * b[3], b[0], b[1]))

    faces = search(0.35) if two_pass else []
    if not (faces and faces[0][2] >= 0.45 * shorter):
        faces = search(min_fraction)
    return facecrop.region_around(faces[0], rgb.shape) if faces else None


def haar_cascade():
    """OpenCV's bundled frontal-face cascade, as served before YuNet (not thread-safe: one per
    thread)."""
    cv2 = facecrop.import_cv2()
    return cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def searches() -> dict[str, Search]:
    """The detectors compared, by name: before, then served."""
    cascade = haar_cascade()
    return {"haar_two_pass": lambda rgb: haar_region(rgb, cascade), "yunet": facecrop.face_region}


def run_searches(images: list[np.ndarray], named: dict[str, Search], label: str) -> dict:
    """Per search: its regions and ms per image (one thread: a stable per-image cost)."""
    facecrop.import_cv2().setNumThreads(1)
    found = {}
    for name, search in named.items():
        search(images[0])  # load the detector outside the timing
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


def compare(before: dict, after: dict) -> dict:
    """Faces found by each, time per image, and the IoU of the regions where both found one."""
    pairs = list(zip(before["regions"], after["regions"], strict=True))
    both = [iou(a, b) for a, b in pairs if a is not None and b is not None]
    return {
        "images": len(pairs),
        "faces_found": [sum(a is not None for a, _ in pairs), sum(b is not None for _, b in pairs)],
        "ms_per_image": [round(before["ms"], 2), round(after["ms"], 2)],
        "speedup": round(before["ms"] / after["ms"], 2),
        "iou_where_both_found": {
            "images": len(both),
            "median": round(float(np.median(both)), 3) if both else None,
            "p5": round(float(np.percentile(both, 5)), 3) if both else None,
        },
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
    named = searches()
    before, served = named
    scorer = Scorer()
    report: dict = {
        "searches": {
            before: "OpenCV Haar frontalface_default as served before: faces >= 0.35 of the "
            "shorter side first, kept when >= 0.45, else >= 0.25; 400 px grey copy",
            served: f"{facecrop.DETECTOR_NAME}: largest face >= {facecrop.MIN_FACE_FRACTION:g} "
            f"of the shorter side on a {facecrop.DETECT_MAX_SIDE} px copy, squared",
        },
        "margin": facecrop.FACE_MARGIN,
        "model": "lite0 as served (its metadata's serve_precision)",
        "note": "one thread each; the test split holds the stored crops (YuNet's since the "
        "rebuild), the originals are the photos and generated faces they were cut from",
    }
    for label, paths in sets.items():
        images = [decoded(path) for path in tqdm(paths, desc=f"decode {label}", unit="img")]
        found = run_searches(images, named, label)
        report[label] = compare(found[before], found[served])
        if label == "test_split":
            regions = {name: found[name]["regions"] for name in named}
            report[label]["roc_auc"] = roc_auc_each(test.labels, images, regions, scorer)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
