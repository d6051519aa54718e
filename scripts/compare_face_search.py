"""Does searching only faces of >= a quarter of the shorter side change any crop? And how much
faster is it? Compares core.facecrop's face boxes at two smallest-face fractions.

    python scripts/compare_face_search.py                     # test split + 400 originals
    python scripts/compare_face_search.py --out reports/facecrop/min_face_fraction.json

Boxes are compared exactly; a changed box changes the model input, an unchanged one cannot.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.facecrop import MIN_FACE_FRACTION, face_region
from core.modelrepo import ModelRepository
from core.preprocessing import FACE_DRAFT_FACTOR, INPUT_SIZE, open_image, to_rgb

ORIGINALS = Path("../shared/data/real-faces")
GENERATED = Path("data/gan/images")


def decoded(path: Path) -> np.ndarray:
    """The image as the face crop sees it (the contract's draft decode)."""
    data = path.read_bytes()
    return np.asarray(to_rgb(open_image(data, draft_size=INPUT_SIZE * FACE_DRAFT_FACTOR)))


def compare(paths: list[Path], fractions: tuple[float, float], label: str) -> dict:
    """Per fraction: ms per image; and how many boxes are identical between the two."""
    import core.facecrop as facecrop

    facecrop.import_cv2().setNumThreads(1)  # single-threaded detection: a stable per-image cost
    boxes: dict[float, list] = {}
    ms: dict[float, float] = {}
    images = [decoded(path) for path in tqdm(paths, desc=f"decode {label}", unit="img")]
    for fraction in fractions:
        facecrop.MIN_FACE_FRACTION = fraction
        started = time.perf_counter()
        boxes[fraction] = [face_region(rgb) for rgb in tqdm(images, desc=f"{label} {fraction:g}")]
        ms[fraction] = (time.perf_counter() - started) * 1000.0 / max(1, len(images))
    facecrop.MIN_FACE_FRACTION = MIN_FACE_FRACTION
    first, second = fractions
    changed = [
        i for i, (a, b) in enumerate(zip(boxes[first], boxes[second], strict=True)) if a != b
    ]
    return {
        "images": len(paths),
        "identical_boxes": len(paths) - len(changed),
        "identical_fraction": round(1 - len(changed) / max(1, len(paths)), 4),
        "faces_found": {str(f): sum(b is not None for b in boxes[f]) for f in fractions},
        "ms_per_image": {str(f): round(v, 2) for f, v in ms.items()},
        "changed_max_abs_dprob": max_dprob([images[i] for i in changed],
                                           [(boxes[first][i], boxes[second][i]) for i in changed]),
    }  # fmt: skip


def max_dprob(images: list[np.ndarray], pairs: list[tuple]) -> float | None:
    """Largest |change| in the shipped default model's raw probability over the images whose
    box changed (None if none did)."""
    if not images:
        return None
    from core.preprocessing import resize_rgb
    from serving.runtime import ModelRuntime, RuntimeConfig

    entry = ModelRepository(Path("models")).entry("lite0")
    runtime = ModelRuntime(entry, RuntimeConfig(providers=("cpu",)))

    def crops(which: int) -> np.ndarray:
        rows = []
        for rgb, pair in zip(images, pairs, strict=True):
            box = pair[which]
            crop = rgb if box is None else rgb[box[0] : box[1], box[2] : box[3]]
            rows.append(resize_rgb(crop, entry.input_size).astype(np.float32))
        return np.stack(rows)

    before, after = (runtime.run(crops(i))["probability_fake"].ravel() for i in (0, 1))
    return round(float(np.abs(before - after).max()), 4)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test", type=Path, default=Path("data/detector/test"))
    parser.add_argument("--originals", type=int, default=400, help="sampled original photos")
    parser.add_argument(
        "--reference", type=float, default=0.1, help="smallest-face fraction to compare with"
    )
    parser.add_argument("--out", type=Path, default=Path("reports/facecrop/min_face_fraction.json"))
    args = parser.parse_args(argv)
    rng = random.Random(0)
    originals = sorted(ORIGINALS.rglob("*.jpg")) + sorted(GENERATED.glob("*.jpg"))
    sample = rng.sample(originals, min(args.originals, len(originals)))
    fractions = (args.reference, MIN_FACE_FRACTION)
    report = {
        "fractions": {"reference": args.reference, "shipped": MIN_FACE_FRACTION},
        "test_split": compare(sorted(args.test.rglob("*.jpg")), fractions, "test"),
        "originals": compare(sample, fractions, "originals"),
        "note": "single thread; identical boxes give identical model inputs (|dp| = 0)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
