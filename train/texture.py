"""Training the texture detector (:mod:`train.texture_model`): a linear head on the frozen
ImageNet Lite0's early blocks, the design that generalised best to held-out sources
(docs/TRAINING.md, source holdout). What a face looks like is left to the deep layers,
which this model does not have.

Training, keras-io style, one function per stage:

1. :func:`pooled_features` — the ``pool`` vector of every training and validation crop,
   cached by :mod:`train.frozen_features` (``lite0-moments``, the same numbers
   ``python -m train.holdout --features lite0-moments`` judges per held-out source);
2. :func:`train.holdout.fit_head` — a class-balanced, standardised logistic regression, the
   head the holdout report trains per fold;
3. :func:`fold_head` — the scaler folded into the ``classifier``'s weights, saved as
   ``model.keras`` (image in [0, 255] -> probability of FAKE).
"""

from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import keras
import numpy as np

from core.preprocessing import PreprocessConfig, contract
from train.config import TextureConfig
from train.files import dataset_alignment, load_split
from train.frozen_features import cached_features
from train.holdout import fit_head
from train.models import CLASSIFIER_LAYER
from train.texture_model import IMAGE_SIZE, build_texture_model

FEATURES = "lite0-moments"  # train.frozen_features: the model's own ``pool`` vector


def pooled_features(data: Path, paths: list[str], progress: bool) -> np.ndarray:
    """The ``pool`` vector of each file (``lite0-moments``, cached under ``data/features``)."""
    names = [os.path.relpath(path, data) for path in paths]
    return cached_features(data, names, FEATURES, progress=progress)


def fold_head(model: keras.Model, head) -> None:
    """Set the ``classifier`` so that the model computes ``head.predict_proba(pool)[:, 1]``."""
    scaler, logistic = head[0], head[-1]
    coef = logistic.coef_[0] / scaler.scale_
    bias = float(logistic.intercept_[0] - np.dot(coef, scaler.mean_))
    model.get_layer(CLASSIFIER_LAYER).set_weights(
        [coef.astype(np.float32)[:, None], np.asarray([bias], np.float32)]
    )


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import log_loss as sk_log_loss

    return float(sk_log_loss(y, p, labels=[0, 1]))


def train_texture(config: TextureConfig) -> dict:
    """Fit, save ``model.keras``, ``history.csv`` and ``config.json``; returns the summary."""
    started, clock = datetime.now(UTC), time.perf_counter()
    data, out = Path(config.data), Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    splits = {s: load_split(data, s, workers=config.workers) for s in ("train", "val")}
    both = pooled_features(data, splits["train"].paths + splits["val"].paths, config.progress)
    x = {"train": both[: len(splits["train"].paths)], "val": both[len(splits["train"].paths) :]}
    y = {s: np.asarray(files.labels) for s, files in splits.items()}
    head = fit_head(x["train"], y["train"], config.c)
    model = build_texture_model()
    fold_head(model, head)
    model.save(out / "model.keras")
    losses = {s: log_loss(y[s], head.predict_proba(x[s])[:, 1]) for s in ("train", "val")}
    with (out / "history.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "stage", "loss", "val_loss"])
        writer.writerow([0, "head", losses["train"], losses["val"]])
    summary = {
        "args": asdict(config) | {"model": "texture", "image_size": IMAGE_SIZE},
        "data": {
            "folder": str(data.resolve()),
            "counts": {name: files.counts() for name, files in splits.items()},
            "features": FEATURES,
        },
        "stages": [{"stage": "head", "epochs": 1, "best_val_loss": losses["val"]}],
        "head": "standardised logistic regression (scikit-learn), class-balanced, folded into "
        "the classifier",
        "parameters": int(model.count_params()),
        "trainable": int(model.get_layer(CLASSIFIER_LAYER).count_params()),
        "preprocessing": contract(
            PreprocessConfig(
                size=IMAGE_SIZE,
                face_crop=config.face_crop,
                face_align=dataset_alignment(data) if config.face_crop else None,
            )
        ),
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - clock, 1),
    }
    (out / "config.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
