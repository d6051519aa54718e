"""From image bytes to a prediction: preprocess off the loop, batch, calibrate, decide."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from core.decision import NO_FACE, calibrate, judge_faces
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


NO_FACE_MESSAGE = (
    "No face found: the model judges faces, so this image gets no verdict. Upload a photo "
    "with a face of at least a quarter of the shorter side, or ask for the whole image with "
    "face_crop=false."
)


class NoFaceFound(Exception):
    """The contract searched the upload for a face and found none (no model run)."""

    def __init__(self, upload: Preprocessed) -> None:
        super().__init__("no face found")
        self.upload = upload


@dataclass(frozen=True)
class Scored:
    """One upload through the model (``outputs`` None: no face found, nothing run)."""

    upload: Preprocessed  # what the model saw, the face box (and the full-size crop)
    outputs: dict[str, np.ndarray] | None  # the model's outputs, one row per face judged


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
        if upload.no_face:
            return Scored(upload, None)
        rows = upload.model_rows()
        return Scored(upload, await infer(state, model, rows, holds_bulk=holds_bulk))
    state.touch()
    found: list[Preprocessed] = []

    def prepare() -> np.ndarray:
        found.append(preprocess_upload(data, config, full_size))
        if found[0].no_face:
            raise NoFaceFound(found[0])
        return found[0].model_rows()

    try:
        outputs = await model.batcher.run_alone(prepare, holds_bulk)
    except NoFaceFound as exc:
        return Scored(exc.upload, None)
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


def prediction(
    state: ServingState,
    model: LoadedModel,
    probabilities_raw: np.ndarray | None,
    upload: Preprocessed | None = None,
) -> dict:
    """The contract's prediction fields (without latency) for the raw model probabilities of
    an upload's faces (one per row of ``upload.model_rows()``): the overall verdict is the
    most suspicious face's, and ``faces`` lists each; NO_FACE, without a probability, for an
    upload whose face search found nothing (``probabilities_raw`` None)."""
    rule = model.entry.decision
    common = {
        "threshold": model.entry.threshold,
        "decision": rule.as_json(),
        "model": model.name,
        "version": model.version,
    }
    faces = [] if upload is None else upload.faces_json()
    if probabilities_raw is None:
        state.metrics.predictions.labels(model.name, str(model.version), NO_FACE).inc()
        verdict = {"label": NO_FACE, "probability_fake": None, "confidence": None}
        found = {"face": None} | ({"faces": []} if upload and upload.face_searched else {})
        return verdict | {"message": NO_FACE_MESSAGE} | common | found | animation(upload)
    calibrated = calibrate(np.asarray(probabilities_raw, np.float64), model.entry.temperature)
    judged = judge_faces(calibrated, rule, faces)
    state.metrics.predictions.labels(model.name, str(model.version), judged["label"]).inc()
    return judged | common | animation(upload)


def animation(upload: Preprocessed | None) -> dict:
    """``{"frames": ...}`` for an animated or multi-page upload (first frame judged), else
    nothing."""
    frames = None if upload is None else upload.frames_json()
    return {} if frames is None else {"frames": frames}


def scored_prediction(state: ServingState, model: LoadedModel, scored: Scored) -> dict:
    """:func:`prediction` for one scored upload (NO_FACE when nothing was run)."""
    raw = None if scored.outputs is None else probabilities(scored.outputs)
    return prediction(state, model, raw, scored.upload)


def probabilities(outputs: dict[str, np.ndarray]) -> np.ndarray:
    """Raw ``probability_fake`` per row as a 1-D array."""
    return np.asarray(outputs["probability_fake"], dtype=np.float64).reshape(-1)
