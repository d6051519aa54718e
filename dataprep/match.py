"""A shortcut-matched subset: real and fake images that the probes' views cannot tell apart.

Propensity-score matching: gradient-boosted trees see everything the four shortcut probes see
(metadata, crop side, sharpness, 16x16 thumbnail) and give, out of fold (stratified, shuffled,
5 folds), each image's probability of being fake from those views alone. Images are binned by
that score (quantiles) and, in every bin, the larger class is subsampled (seeded) to the size
of the smaller one. Within the subset, the views carry (almost) no class signal, so a detector
scored on it cannot be leaning on them. Splits are kept: the matched test images are a subset
of the test split. Written to ``DATASET/matched.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from dataprep.probes import features
from dataprep.stats import load_rows

MATCHED_FILE = "matched.json"


def propensity(matrices: dict[str, np.ndarray], y: np.ndarray, seed: int) -> np.ndarray:
    """Out-of-fold P(fake | probe views) for every row."""
    x = np.hstack([matrices[name] for name in sorted(matrices)])
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    model = HistGradientBoostingClassifier(max_iter=200, random_state=seed)
    return cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]


def balanced_bins(score: np.ndarray, y: np.ndarray, bins: int, seed: int) -> np.ndarray:
    """Indices kept: per score-quantile bin, the larger class subsampled to the smaller."""
    edges = np.quantile(score, np.linspace(0, 1, bins + 1))
    index = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, bins - 1)
    rng = np.random.default_rng(seed)
    kept = []
    for b in range(bins):
        real = np.nonzero((index == b) & (y == 0))[0]
        fake = np.nonzero((index == b) & (y == 1))[0]
        n = min(len(real), len(fake))
        kept += [rng.choice(real, n, replace=False), rng.choice(fake, n, replace=False)]
    return np.sort(np.concatenate(kept)) if kept else np.zeros(0, dtype=int)


def match(dataset: Path, bins: int = 20, seed: int = 0) -> dict:
    """Compute the matched subset and write ``dataset/matched.json``; returns its summary."""
    rows = load_rows(dataset)
    y = np.asarray([row["label"] for row in rows])
    score = propensity(features(rows, dataset), y, seed)
    kept = balanced_bins(score, y, bins, seed)
    counts: dict = {}
    for i in kept:
        split = counts.setdefault(rows[i]["split"], {})
        split[rows[i]["source"]] = split.get(rows[i]["source"], 0) + 1
    summary = {
        "method": "propensity-score bins (out-of-fold boosted trees on all probe views), "
        "larger class subsampled per bin",
        "bins": bins,
        "seed": seed,
        "propensity_auc_all": round(float(roc_auc_score(y, score)), 4),
        "propensity_auc_matched": round(float(roc_auc_score(y[kept], score[kept])), 4),
        "kept": {"real": int((y[kept] == 0).sum()), "fake": int((y[kept] == 1).sum())},
        "kept_by_split_and_source": counts,
    }
    payload = summary | {"files": [rows[i]["file"] for i in kept]}
    (dataset / MATCHED_FILE).write_text(json.dumps(payload, indent=1))
    return summary


def matched_files(dataset: Path) -> set[str] | None:
    """Files of the matched subset (relative to the dataset), or None if not computed."""
    path = dataset / MATCHED_FILE
    return set(json.loads(path.read_text())["files"]) if path.exists() else None
