"""Shortcut probes: simple classifiers that see only what should *not* tell the classes apart.

Each probe is trained on the dataset's train split and scored (ROC-AUC) on its test split:

* ``metadata``: stored width, height, bytes and JPEG quality;
* ``crop_side``: the face crop's side in the stored file's pixels (what training reads);
* ``sharpness``: Laplacian variance and detail (mean |x - blur(x)|) of the model-size
  (224 px) crop;
* ``thumbnail``: a 16x16 grey thumbnail (pose, background, framing, tone).

Two classifiers per probe (a standardised logistic regression and gradient-boosted trees);
the higher AUC counts. AUCs near 0.5 mean the probe's view carries no class signal.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from dataprep.imaging import grey_thumbnail, laplacian_variance
from dataprep.stats import load_rows

TARGETS = {"metadata": 0.65, "crop_side": 0.65, "sharpness": 0.65, "thumbnail": 0.75}


def image_features(path: Path) -> tuple[np.ndarray, float]:
    """16x16 grey thumbnail and sharpness, measured on the stored file."""
    rgb = np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"))
    return grey_thumbnail(rgb).ravel().astype(np.float32), laplacian_variance(rgb)


def features(rows: list[dict], dataset: Path) -> dict[str, np.ndarray]:
    """Feature matrix per probe, one row per manifest row."""
    thumbs, sharp = [], []
    for row in tqdm(rows, desc="probe features", unit="img"):
        thumb, sharpness = image_features(dataset / row["file"])
        thumbs.append(thumb)
        sharp.append([np.log1p(sharpness), row.get("detail", 0.0)])
    meta = [[r["stored_width"], r["stored_height"], r["bytes"], r["quality"]] for r in rows]
    side = [[max(r["stored_width"], r["stored_height"])] for r in rows]
    return {
        "metadata": np.asarray(meta, dtype=np.float64),
        "crop_side": np.asarray(side, dtype=np.float64),
        "sharpness": np.asarray(sharp, dtype=np.float64),
        "thumbnail": np.stack(thumbs).astype(np.float64) / 255.0,
    }


def classifiers(seed: int) -> dict:
    return {
        "logistic": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0)),
        "boosted_trees": HistGradientBoostingClassifier(max_iter=200, random_state=seed),
    }


def score_probe(
    x: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    kinds: np.ndarray,
    seed: int,
    sources: np.ndarray | None = None,
) -> dict:
    """Test AUC of each classifier, overall, per fake kind (that kind vs all reals) and per
    real source (all fakes vs that source)."""
    result: dict = {}
    fitted = []
    for name, model in classifiers(seed).items():
        model.fit(x[train], y[train])
        scores = model.predict_proba(x[test])[:, 1]
        auc = float(roc_auc_score(y[test], scores))
        result[name] = round(auc, 4)
        fitted.append((auc, scores))
    best_auc, best_scores = max(fitted, key=lambda pair: pair[0])
    result["auc"] = round(best_auc, 4)
    per_kind = {}
    for kind in sorted(set(kinds[test][y[test] == 1])):
        keep = (y[test] == 0) | (kinds[test] == kind)
        per_kind[kind] = round(float(roc_auc_score(y[test][keep], best_scores[keep])), 4)
    result["per_fake_kind"] = per_kind
    if sources is not None:
        per_source = {}
        for source in sorted(set(sources[test][y[test] == 0])):
            keep = (y[test] == 1) | (sources[test] == source)
            per_source[source] = round(float(roc_auc_score(y[test][keep], best_scores[keep])), 4)
        result["per_real_source"] = per_source
    return result


def run_probes(
    dataset: Path, out: Path | None = None, seed: int = 0, subset: set[str] | None = None
) -> dict:
    """Train and score every probe (on the files in ``subset`` only, if given); write ``out``
    (JSON) if given."""
    rows = load_rows(dataset)
    if subset is not None:
        rows = [row for row in rows if row["file"] in subset]
    y = np.asarray([r["label"] for r in rows])
    split = np.asarray([r["split"] for r in rows])
    kinds = np.asarray([r["kind"] for r in rows])
    sources = np.asarray([r["source"] for r in rows])
    train, test = split == "train", split == "test"
    if len(set(y[test])) < 2 or len(set(y[train])) < 2:
        raise SystemExit("error: train and test splits need both classes")
    matrices = features(rows, dataset)
    probes = {}
    for name, x in matrices.items():
        probes[name] = score_probe(x, y, train, test, kinds, seed, sources)
        probes[name]["target"] = TARGETS[name]
        probes[name]["met"] = probes[name]["auc"] <= TARGETS[name]
    report = {
        "dataset": str(dataset),
        "subset": "matched (dataprep.match)" if subset is not None else "all",
        "train_images": int(train.sum()),
        "test_images": int(test.sum()),
        "probes": probes,
        "note": "ROC-AUC on the test split of classifiers trained on the train split; "
        "0.5 = no signal. Higher of logistic regression and boosted trees.",
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
    return report
