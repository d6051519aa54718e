"""Training: data -> model -> fit (head, then fine-tune for Xception) -> run folder.

A run folder holds ``model.keras`` (best validation loss over all stages),
``history.csv`` (one row per epoch, with its stage and learning rate) and ``config.json``
(arguments, data counts, skipped corrupt files, class weights, versions, duration).
"""

from __future__ import annotations

import json
import logging
import platform
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from core.preprocessing import PreprocessConfig, contract
from train import models
from train.augment import build_augmenter
from train.config import TrainConfig
from train.data import PipelineConfig, class_weights, make_dataset
from train.files import SplitFiles, list_split, load_split

log = logging.getLogger(__name__)

RUN_FILES = ("model.keras", "history.csv", "config.json", "report.json")


class TqdmProgress(keras.callbacks.Callback):
    """One tqdm bar per epoch (use with ``verbose=0``); the epoch summary stays printed."""

    def __init__(self, total_epochs: int, enabled: bool = True) -> None:
        super().__init__()
        self.total_epochs = total_epochs
        self.enabled = enabled
        self.bar: tqdm | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.bar = tqdm(
            total=self.params.get("steps"),
            desc=f"epoch {epoch + 1}/{self.total_epochs}",
            unit="batch",
            disable=not self.enabled,
        )

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{float(logs['loss']):.4f}")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.bar is not None:
            shown = {k: f"{float(v):.4f}" for k, v in (logs or {}).items() if k != "stage"}
            self.bar.set_postfix(shown)
            self.bar.close()


class StageLogger(keras.callbacks.Callback):
    """Adds ``stage`` and ``learning_rate`` to each epoch's logs (seen by CSVLogger)."""

    def __init__(self, stage: str) -> None:
        super().__init__()
        self.stage = stage

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["stage"] = self.stage
            logs["learning_rate"] = float(self.model.optimizer.learning_rate.numpy())


def load_data(config: TrainConfig) -> dict[str, SplitFiles]:
    """Train and val, checked and without corrupt images; test listed to fail early."""
    splits = {
        split: load_split(config.data, split, workers=config.workers) for split in ("train", "val")
    }
    splits["test"] = list_split(config.data, "test")
    return splits


def build(config: TrainConfig) -> keras.Model:
    """The model of ``config`` (graph contract in :mod:`train.models`)."""
    if config.model == "xception":
        return models.build_xception(
            config.image_size, weights=config.weights, dropout=config.dropout
        )
    return models.build_cnn(config.image_size, filters=config.cnn_filters, dropout=config.dropout)


def compile_model(model: keras.Model, lr: float) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
    )


def fit_stage(
    model: keras.Model,
    datasets: tuple[tf.data.Dataset, tf.data.Dataset],
    stage: str,
    epochs: tuple[int, int],
    checkpoint: keras.callbacks.ModelCheckpoint,
    config: TrainConfig,
    weights: dict[int, float] | None,
) -> keras.callbacks.History:
    """One ``model.fit`` from epoch ``epochs[0]`` to ``epochs[1]`` with the run's callbacks."""
    callbacks = [
        StageLogger(stage),
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=max(1, config.patience // 2), min_lr=1e-7
        ),
        checkpoint,  # shared across stages: keeps the best model of the whole run
        keras.callbacks.CSVLogger(str(Path(config.out) / "history.csv"), append=True),
        TqdmProgress(epochs[1], config.progress),
    ]
    return model.fit(
        datasets[0],
        validation_data=datasets[1],
        initial_epoch=epochs[0],
        epochs=epochs[1],
        class_weight=weights,
        callbacks=callbacks,
        shuffle=False,  # the tf.data pipeline shuffles (seeded)
        verbose=0,
    )


def versions() -> dict:
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def prepare_out(out: Path) -> None:
    """Create the run folder; remove a previous run's files so nothing stale survives."""
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        if (out / name).exists():
            log.warning("replacing %s from an earlier run", out / name)
            (out / name).unlink()


def train(config: TrainConfig) -> dict:
    """Train one model as ``config`` says; returns what is written to ``config.json``."""
    config = config.resolved()
    started, clock = datetime.now(UTC), time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    splits = load_data(config)
    out = Path(config.out)
    prepare_out(out)

    pipeline = PipelineConfig(config.image_size, config.batch_size, config.seed, cache=config.cache)
    augment = build_augmenter(config.augment, config.seed)
    datasets = (
        make_dataset(splits["train"], pipeline, training=True, augment=augment),
        make_dataset(splits["val"], pipeline),
    )
    weights = class_weights(splits["train"]) if config.balance_classes else None
    model = build(config)
    checkpoint = keras.callbacks.ModelCheckpoint(
        str(out / "model.keras"), monitor="val_loss", save_best_only=True
    )
    stages = fit_stages(model, datasets, checkpoint, config, weights)
    if not (out / "model.keras").exists():  # val_loss never finite: keep the last weights
        log.warning("no finite validation loss: saving the last weights")
        model.save(out / "model.keras")

    skipped = {name: files.skipped for name, files in splits.items() if files.skipped}
    summary = {
        "args": asdict(config),
        "data": {
            "folder": str(Path(config.data).resolve()),
            "counts": {name: files.counts() for name, files in splits.items()},
            "test_counts_note": "test is only listed here; evaluation decodes and checks it",
            "skipped_corrupt": sum(len(v) for v in skipped.values()),
            "skipped_files": skipped,
        },
        "class_weight": {str(k): v for k, v in (weights or {}).items()},
        "stages": stages,
        "best": {"val_loss": float(checkpoint.best) if checkpoint.best is not None else None},
        "parameters": int(model.count_params()),
        "preprocessing": contract(PreprocessConfig(size=config.image_size)),
        "versions": versions(),
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - clock, 2),
    }
    (out / "config.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def fit_stages(
    model: keras.Model,
    datasets: tuple,
    checkpoint: keras.callbacks.ModelCheckpoint,
    config: TrainConfig,
    weights: dict | None,
) -> list[dict]:
    """The head (or the whole CNN), then for Xception the unfrozen top blocks; one record
    per stage."""
    compile_model(model, config.lr)
    head = "head" if config.model == "xception" else "train"
    history = fit_stage(model, datasets, head, (0, config.epochs), checkpoint, config, weights)
    stages = [{"stage": head, "epochs": len(history.epoch), "lr": config.lr}]
    if config.fine_tune_epochs:
        opened = models.unfreeze_top(model)
        compile_model(model, config.fine_tune_lr)
        done = history.epoch[-1] + 1
        span = (done, done + config.fine_tune_epochs)
        history = fit_stage(model, datasets, "fine_tune", span, checkpoint, config, weights)
        stages.append({
            "stage": "fine_tune",
            "epochs": len(history.epoch),
            "lr": config.fine_tune_lr,
            "unfrozen_layers": opened,
            "blocks": list(models.XCEPTION_FINE_TUNE_BLOCKS),
        })  # fmt: skip
    return stages
