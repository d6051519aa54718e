"""From image bytes to a prediction: preprocess off the loop, batch, calibrate, decide."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from core.decision import calibrate, decide
from core.preprocessing import ImageError, PreprocessConfig, Preprocessed, preprocess_upload
from serving.batcher import (
    Announcement,
    BatcherStopped,
    ModelRunError,
    QueueFull,
    RequestTimeout,
    TooManyRows,
)
from serving.errors import APIError, from_image_error, out_of_range, unavailable
from serving.models import LoadedModel
from serving.state import ServingState

logger = logging.getLogger("serving")


async def preprocess(state: ServingState, data: bytes, config: PreprocessConfig) -> np.ndarray:
    """``core.preprocessing.preprocess_bytes`` on the thread pool; image errors become 4xx."""
    return (await preprocess_off_loop(state, data, config)).model_input


async def preprocess_off_loop(
    state: ServingState, data: bytes, config: PreprocessConfig, full_size: bool = False
) -> Preprocessed:
    """``core.preprocessing.preprocess_upload`` on the thread pool: the model input, the face
    crop it came from (and the full-size crop); image errors become 4xx."""
    try:
        return await state.run_blocking(preprocess_upload, data, config, full_size)
    except Exception as exc:
        raise preprocessing_error(exc) from None


def preprocessing_error(exc: Exception) -> APIError:
    """Image errors become 4xx, other failures (e.g. of the face detector) a JSON 500; call it
    in the ``except`` block (it logs the traceback)."""
    if isinstance(exc, ImageError):
        return from_image_error(exc)
    logger.exception("preprocessing failed")  # answer, keep serving
    return APIError(500, "preprocessing_failed", f"preprocessing failed: {exc}")


@dataclass(frozen=True)
class Scored:
    """One upload through the model."""

    upload: Preprocessed  # what the model saw, the face box (and the full-size crop)
    outputs: dict[str, np.ndarray]  # the model's outputs, batch axis of one kept


async def preprocess_and_infer(
    state: ServingState,
    model: LoadedModel,
    data: bytes,
    config: PreprocessConfig,
    announcement: Announcement,
    full_size: bool = False,
    holds_bulk: bool = True,
) -> Scored:
    """One upload through the model (``full_size``: keep every pixel of its crop, to draw
    over). With the batcher idle, its decode and model run share one hop to the inference
    thread (:meth:`~serving.batcher.DynamicBatcher.run_alone`); else it is decoded on the
    thread pool, its ``announcement`` ends and its row is batched. ``holds_bulk``: see
    :meth:`~serving.batcher.DynamicBatcher.submit`."""
    if not model.batcher.idle:
        upload = await preprocess_off_loop(state, data, config, full_size)
        announcement.end()
        rows = upload.model_input[None]
        return Scored(upload, await infer(state, model, rows, holds_bulk=holds_bulk))
    state.touch()
    found: list[Preprocessed] = []

    def prepare() -> np.ndarray:
        found.append(preprocess_upload(data, config, full_size))
        return found[0].model_input[None]

    try:
        outputs = await model.batcher.run_alone(prepare, holds_bulk)
    except (BatcherStopped, RequestTimeout, ModelRunError) as exc:
        raise batcher_error(state, exc) from None
    except Exception as exc:  # from prepare: the upload's preprocessing
        raise preprocessing_error(exc) from None
    return Scored(found[0], outputs)


def batcher_error(state: ServingState, exc: Exception) -> APIError:
    """The HTTP error for a batcher failure."""
    retry = state.config.retry_after_s
    if isinstance(exc, QueueFull):
        return unavailable("queue_full", str(exc), retry)
    if isinstance(exc, BatcherStopped):
        return unavailable("shutting_down", str(exc), retry)
    if isinstance(exc, RequestTimeout):
        return APIError(504, "timeout", str(exc))
    if isinstance(exc, TooManyRows):
        return out_of_range(str(exc))
    return APIError(500, "inference_failed", str(exc))


async def infer(
    state: ServingState,
    model: LoadedModel,
    rows: np.ndarray,
    bulk: bool = False,
    holds_bulk: bool = True,
) -> dict[str, np.ndarray]:
    """Submit ``rows`` to the model's batcher (``bulk`` yields to interactive requests;
    ``holds_bulk``: see :meth:`~serving.batcher.DynamicBatcher.submit`); batcher failures
    become HTTP errors."""
    try:
        return await model.batcher.submit(rows, bulk=bulk, holds_bulk=holds_bulk)
    except (QueueFull, BatcherStopped, RequestTimeout, TooManyRows, ModelRunError) as exc:
        raise batcher_error(state, exc) from None


def prediction(state: ServingState, model: LoadedModel, probability_raw: float) -> dict:
    """The contract's prediction fields (without latency) for one raw model probability."""
    probability = float(calibrate(np.float64(probability_raw), model.entry.temperature))
    rule = model.entry.decision
    label, confidence = decide(probability, rule)
    state.metrics.predictions.labels(model.name, str(model.version), label).inc()
    return {
        "label": label,
        "probability_fake": probability,
        "confidence": confidence,
        "threshold": model.entry.threshold,
        "decision": rule.as_json(),
        "model": model.name,
        "version": model.version,
    }


def probabilities(outputs: dict[str, np.ndarray]) -> np.ndarray:
    """Raw ``probability_fake`` per row as a 1-D array."""
    return np.asarray(outputs["probability_fake"], dtype=np.float64).reshape(-1)
