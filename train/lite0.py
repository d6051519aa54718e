"""EfficientNet-Lite0 detector: ImageNet base, a head on frozen features, then the top blocks.

Two CPU cores cannot push 15,000 augmented images a few times through a whole backbone in an
hour, so the network is split before block ``cut`` (default ``block5a``). The frozen lower
part runs once per image and view (one clean view plus augmented ones, :mod:`train.views`);
its activations are cached as float16. Then, keras-io style, one function per stage:

1. :func:`train_head` — pooled ``head_relu`` features of the frozen upper part -> a new
   ``Dense(1, sigmoid)`` classifier;
2. :func:`fine_tune` — the upper blocks and head conv trained on the cached activations
   (BatchNorm stays in inference mode), starting from that classifier.

The saved ``model.keras`` is the whole graph (image in [0, 255] -> probability of FAKE) with
the contract of :mod:`train.models` (``features``, ``pool``, ``classifier``), so evaluation,
export and the class-activation map work as for the other models.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import keras
import numpy as np
from keras import layers
from tqdm import tqdm

from core.preprocessing import PreprocessConfig, contract, decode_rgb, preprocess_rgb
from train.config import Lite0Config
from train.data import balanced_weights
from train.efficientnet_lite import pretrained_parts
from train.files import SplitFiles, dataset_alignment, load_split
from train.models import CLASSIFIER_LAYER, FEATURES_LAYER, INPUT_NAME
from train.train import TqdmProgress, compile_model
from train.views import ViewConfig, random_view

log = logging.getLogger(__name__)

IMAGE_SIZE = 224


def build_detector(config: Lite0Config) -> tuple[keras.Model, keras.Model, keras.Model]:
    """``(model, lower, upper)``: the whole detector and its two parts (shared layers)."""
    lower, upper = pretrained_parts(config.cut, config.weights, IMAGE_SIZE)
    lower.trainable = False
    image = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name=INPUT_NAME, dtype="float32")
    x = upper(lower(image))
    x = layers.Activation("linear", name=FEATURES_LAYER)(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(config.dropout, name="head_dropout")(x)
    output = layers.Dense(1, activation="sigmoid", name=CLASSIFIER_LAYER)(x)
    return keras.Model(image, output, name="lite0"), lower, upper


def model_inputs(path: str, view: int, rng: np.random.Generator, augment: ViewConfig):
    """View 0 is the file as stored; later views are augmented (same path as an upload)."""
    with open(path, "rb") as handle:
        rgb = decode_rgb(handle.read())
    if view > 0:
        rgb = random_view(rgb, rng, augment)
    return preprocess_rgb(rgb, PreprocessConfig(size=IMAGE_SIZE))


def cache_activations(
    lower: keras.Model, files: SplitFiles, views: int, config: Lite0Config, desc: str
) -> tuple[np.ndarray, np.ndarray]:
    """Lower-part activations (float16) of every file and view, and their labels."""
    rng = np.random.default_rng([config.seed, len(files.paths), views])
    jobs = [(path, view) for view in range(views) for path in files.paths]
    labels = np.asarray(list(files.labels) * views, dtype=np.float32)
    chunks = []
    for start in tqdm(range(0, len(jobs), config.batch_size), desc=desc, unit="batch",
                      disable=not config.progress):  # fmt: skip
        batch = np.stack(
            [
                model_inputs(p, v, rng, config.augment)
                for p, v in jobs[start : start + config.batch_size]
            ]
        )
        chunks.append(np.asarray(lower.predict_on_batch(batch)).astype(np.float16))
    return np.concatenate(chunks), labels


class Batches(keras.utils.PyDataset):
    """Shuffled (seeded, per epoch) float32 batches of cached activations."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch: int, seed: int, shuffle: bool):
        super().__init__()
        self.x, self.y, self.batch, self.shuffle = x, y, batch, shuffle
        self.rng = np.random.default_rng(seed)
        self.order = np.arange(len(x))
        self.on_epoch_end()

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch)

    def __getitem__(self, index: int):
        chosen = np.sort(self.order[index * self.batch : (index + 1) * self.batch])
        return self.x[chosen].astype(np.float32), self.y[chosen]

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.rng.shuffle(self.order)


def head_model(model: keras.Model, upper: keras.Model, shape: tuple[int, ...]) -> keras.Model:
    """Cached activations -> probability, through the detector's own layers."""
    activations = keras.Input(shape, name="activations")
    x = upper(activations)
    for name in (FEATURES_LAYER, "pool", "head_dropout", CLASSIFIER_LAYER):
        x = model.get_layer(name)(x)
    return keras.Model(activations, x, name="lite0_top")


def callbacks(config: Lite0Config, stage: str) -> list[keras.callbacks.Callback]:
    return [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True
        ),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, min_lr=1e-6),
        keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: logs.update(stage=stage) if logs is not None else None
        ),
    ]


def train_head(
    model: keras.Model, upper: keras.Model, train: tuple, val: tuple, config: Lite0Config
) -> keras.callbacks.History:
    """Stage 1: the classifier on pooled features of the frozen upper part (computed once)."""
    pooled = keras.Model(upper.input, layers.GlobalAveragePooling2D()(upper.output))
    features = [
        np.concatenate(
            [
                pooled.predict_on_batch(x[i : i + 256].astype(np.float32))
                for i in range(0, len(x), 256)
            ]
        )
        for x, _ in (train, val)
    ]
    head = keras.Sequential(
        [
            keras.Input((features[0].shape[1],)),
            model.get_layer("head_dropout"),
            model.get_layer(CLASSIFIER_LAYER),
        ]
    )
    compile_model(head, config.lr)
    return head.fit(
        features[0], train[1], validation_data=(features[1], val[1]), epochs=config.head_epochs,
        batch_size=config.batch_size, class_weight=balanced_weights(train[1]),
        callbacks=callbacks(config, "head"), verbose=0,
    )  # fmt: skip


def fine_tune(
    model: keras.Model, upper: keras.Model, train: tuple, val: tuple, config: Lite0Config
) -> keras.callbacks.History:
    """Stage 2: upper blocks and head conv trainable (BatchNorm frozen), then the classifier."""
    upper.trainable = True
    for layer in upper.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
    top = head_model(model, upper, train[0].shape[1:])
    compile_model(top, config.fine_tune_lr)
    bar = TqdmProgress(config.fine_tune_epochs, config.progress)
    return top.fit(
        Batches(*train, config.batch_size, config.seed, shuffle=True),
        validation_data=Batches(*val, 256, config.seed, shuffle=False),
        epochs=config.fine_tune_epochs, class_weight=balanced_weights(train[1]),
        callbacks=[*callbacks(config, "fine_tune"), bar], verbose=0,
    )  # fmt: skip


def write_history(path: Path, histories: list[keras.callbacks.History]) -> int:
    """One CSV row per epoch of every stage; returns the number of rows."""
    rows, epoch = [], 0
    for history in histories:
        keys = [k for k in history.history if k != "stage"]
        stage = history.history.get("stage", ["?"])[0]
        for index in range(len(history.epoch)):
            rows.append(
                {"epoch": epoch, "stage": stage} | {k: history.history[k][index] for k in keys}
            )
            epoch += 1
    fieldnames = sorted(
        {k for row in rows for k in row}, key=lambda k: (k not in ("epoch", "stage"), k)
    )
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def limited(files: SplitFiles, limit: int | None, seed: int) -> SplitFiles:
    if limit is None or len(files.paths) <= limit:
        return files
    keep = np.sort(np.random.default_rng(seed).permutation(len(files.paths))[:limit])
    return SplitFiles(files.name, files.folder, [files.paths[i] for i in keep],
                      [files.labels[i] for i in keep])  # fmt: skip


def train_lite0(config: Lite0Config) -> dict:
    """Train, save ``model.keras``, ``history.csv`` and ``config.json``; returns the summary."""
    started, clock = datetime.now(UTC), time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    splits = {
        s: limited(load_split(config.data, s, workers=config.workers), config.limit, config.seed)
        for s in ("train", "val")
    }
    model, lower, upper = build_detector(config)
    train = cache_activations(lower, splits["train"], config.views, config, "caching train")
    val = cache_activations(lower, splits["val"], 1, config, "caching val")
    cached_s = round(time.perf_counter() - clock, 1)
    histories = [train_head(model, upper, train, val, config)]
    if config.fine_tune_epochs:
        histories.append(fine_tune(model, upper, train, val, config))
    model.save(out / "model.keras")
    epochs = write_history(out / "history.csv", histories)
    summary = {
        "args": asdict(config) | {"model": "lite0", "image_size": IMAGE_SIZE},
        "data": {
            "folder": str(Path(config.data).resolve()),
            "counts": {name: files.counts() for name, files in splits.items()},
            "cached_views": {"train": config.views, "val": 1},
        },
        "stages": [
            {
                "stage": h.history.get("stage", ["?"])[0],
                "epochs": len(h.epoch),
                "best_val_loss": float(min(h.history["val_loss"])),
            }
            for h in histories
        ],  # fmt: skip
        "history_rows": epochs,
        "parameters": int(model.count_params()),
        "trainable_in_fine_tune": int(sum(np.prod(w.shape) for w in upper.trainable_weights)),
        "preprocessing": contract(
            PreprocessConfig(
                size=IMAGE_SIZE,
                face_crop=config.face_crop,
                face_align=dataset_alignment(config.data) if config.face_crop else None,
            )
        ),
        "started": started.isoformat(timespec="seconds"),
        "caching_s": cached_s,
        "duration_s": round(time.perf_counter() - clock, 1),
    }
    (out / "config.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
