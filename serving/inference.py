"""From image bytes to a prediction: preprocess off the loop, batch, calibrate, decide."""

from __future__ import annotations

import logging

import numpy as np

from core.decision import calibrate, decide
from core.preprocessing import (
    FaceBox,
    ImageError,
    PreprocessConfig,
    preprocess_bytes,
    preprocess_bytes_and_box,
)
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
    model_input, _ = await preprocess_with_box(state, data, config)
    return model_input


async def preprocess_with_box(
    state: ServingState, data: bytes, config: PreprocessConfig
) -> tuple[np.ndarray, FaceBox | None]:
    """``core.preprocessing.preprocess_bytes_and_box`` on the thread pool: the model input and
    the face crop it came from; image errors become 4xx, other failures a JSON 500."""
    try:
        return await state.run_blocking(preprocess_bytes_and_box, data, config)
    except ImageError as exc:
        raise from_image_error(exc) from None
    except Exception as exc:  # e.g. the optional face detector failing: answer, keep serving
        logger.exception("preprocessing failed")
        raise APIError(500, "preprocessing_failed", f"preprocessing failed: {exc}") from None


async def preprocess_and_infer(
    state: ServingState,
    model: LoadedModel,
    data: bytes,
    config: PreprocessConfig,
    announcement: Announcement,
) -> dict[str, np.ndarray]:
    """One upload's model outputs. With the batcher idle, its decode and model run share one
    hop to the inference thread (:meth:`~serving.batcher.DynamicBatcher.run_alone`); else it
    is decoded on the thread pool, its ``announcement`` ends and its row joins a batch."""
    if not model.batcher.idle:
        row = await preprocess(state, data, config)
        announcement.end()
        return await infer(state, model, row[None])
    state.touch()
    try:
        return await model.batcher.run_alone(lambda: preprocess_bytes(data, config)[None])
    except ImageError as exc:
        raise from_image_error(exc) from None
    except (BatcherStopped, RequestTimeout, ModelRunError) as exc:
        raise batcher_error(state, exc) from None
    except Exception as exc:  # as in preprocess_with_box: answer, keep serving
        logger.exception("preprocessing failed")
        raise APIError(500, "preprocessing_failed", f"preprocessing failed: {exc}") from None


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
    state: ServingState, model: LoadedModel, rows: np.ndarray, bulk: bool = False
) -> dict[str, np.ndarray]:
    """Submit ``rows`` to the model's batcher (``bulk`` yields to interactive requests);
    batcher failures become HTTP errors."""
    try:
        return await model.batcher.submit(rows, bulk=bulk)
    except (QueueFull, BatcherStopped, RequestTimeout, TooManyRows, ModelRunError) as exc:
        raise batcher_error(state, exc) from None


def prediction(state: ServingState, model: LoadedModel, probability_raw: float) -> dict:
    """The contract's prediction fields (without latency) for one raw model probability."""
    probability = float(calibrate(np.float64(probability_raw), model.entry.temperature))
    label, confidence = decide(probability, model.entry.threshold)
    state.metrics.predictions.labels(model.name, str(model.version), label).inc()
    return {
        "label": label,
        "probability_fake": probability,
        "confidence": confidence,
        "threshold": model.entry.threshold,
        "model": model.name,
        "version": model.version,
    }


def probabilities(outputs: dict[str, np.ndarray]) -> np.ndarray:
    """Raw ``probability_fake`` per row as a 1-D array."""
    return np.asarray(outputs["probability_fake"], dtype=np.float64).reshape(-1)
