"""A run's saved model and its predictions through the training pipeline's preprocessing.

Shared by :mod:`train.evaluate` and :mod:`train.robustness` (neither imports the other's
command line). TensorFlow loads only when a function here is called.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from train.files import DatasetError, SplitFiles
from train.transforms import Transform

if TYPE_CHECKING:
    import keras


def _run_file(run: Path, name: str) -> Path:
    path = run / name
    if not path.is_file():
        raise DatasetError(f"{path} not found: is {run} a folder written by python -m train?")
    return path


def read_run_config(run: Path) -> dict:
    """The run's ``config.json``; :class:`DatasetError` if it is missing."""
    return json.loads(_run_file(run, "config.json").read_text())


def load_run(run: Path) -> tuple[keras.Model, dict]:
    """The run's model and its ``config.json``; :class:`DatasetError` if either is missing."""
    import keras

    model_path = _run_file(run, "model.keras")
    config = read_run_config(run)
    return keras.saving.load_model(model_path, compile=False), config


def predict(
    model: keras.Model,
    files: SplitFiles,
    image_size: int,
    batch_size: int,
    transform: Transform | None = None,
    progress: bool = True,
    label: str = "",
) -> np.ndarray:
    """Raw probability of FAKE for every file, in ``files.paths`` order."""
    from train.data import PipelineConfig, make_dataset

    config = PipelineConfig(image_size=image_size, batch_size=batch_size, cache="none")
    dataset = make_dataset(files, config, transform=transform)
    steps = -(-len(files.paths) // batch_size)
    outputs = [
        np.asarray(model.predict_on_batch(images)).reshape(-1)
        for images, _ in tqdm(
            dataset, total=steps, desc=f"predicting {label or files.name}", disable=not progress
        )
    ]
    return np.concatenate(outputs).astype(np.float64)
