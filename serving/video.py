"""``POST /v1/predict/video``: a short clip scored frame by frame through the image path.

1. query: ``frames=K`` (default 32) or ``fps=F``, ``face_crop``, ``model``, ``version``;
2. the upload streams into a temporary file (:mod:`serving.video_upload`), deleted afterwards;
3. :class:`core.video.VideoReader` opens it and decodes the sampled frames in chunks on the
   app's decode threads, each frame preprocessed exactly like an uploaded image;
4. each chunk goes to the model's batcher as **bulk** rows while the next one decodes, so a
   video never holds up image predictions (they join the next batch ahead of it); at most
   ``CHUNKS_IN_FLIGHT`` chunks of a video wait in the queue, so videos cannot fill it;
5. the answer: the verdict (``core.video.video_verdict``: mean of the top quarter of the
   calibrated frame probabilities) with its rule, per-frame results and thumbnails of the
   highest-scoring frames.

At most ``video_concurrency`` videos are scored at once per worker (503 ``video_busy``).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from pathlib import Path

import numpy as np
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse

from core.decision import calibrate
from core.preprocessing import PreprocessConfig, encode_jpeg
from core.video import (
    DEFAULT_FRAMES,
    Frame,
    Sampling,
    VideoError,
    VideoLimits,
    VideoReader,
    judged,
)
from serving.config import ServerConfig
from serving.errors import APIError, bad_parameter
from serving.inference import infer, probabilities
from serving.models import LoadedModel
from serving.params import face_crop_flag, query_float, query_int
from serving.state import ServingState
from serving.video_upload import received_video

logger = logging.getLogger("serving")

PATH = "/v1/predict/video"
CHUNK_ROWS = 32  # frames decoded per trip to a decode thread, and per batcher submission
CHUNKS_IN_FLIGHT = 2  # submissions of one video queued at once (the next one decodes meanwhile)
MULTIPART_ALLOWANCE = 64 * 1024  # body bytes allowed beyond the video for multipart framing
TOP_THUMBNAILS = 6  # most thumbnails of the top-k frames in the answer
MAX_FPS = 1000.0


def body_limits(config: ServerConfig) -> dict[str, int]:
    """Per-path body limits for :class:`serving.middleware.BodyLimitMiddleware`."""
    return {PATH: config.video_max_bytes + MULTIPART_ALLOWANCE}


def parse_sampling(query: QueryParams, limits: VideoLimits) -> Sampling:
    """``frames`` or ``fps`` from the query (400 both or malformed, 422 out of bounds)."""
    frames = query_int(query, "frames", None, 1, limits.max_frames)
    fps = query_float(query, "fps", None, 0.001, MAX_FPS)
    if frames is not None and fps is not None:
        raise bad_parameter("give frames or fps, not both")
    return Sampling(frames=None, fps=fps) if fps is not None else Sampling(frames or DEFAULT_FRAMES)


def _api_error(exc: VideoError) -> APIError:
    return APIError(exc.status, exc.code, str(exc))


async def _decode_and_score(
    state: ServingState, model: LoadedModel, reader: VideoReader, indices: list[int],
    config: PreprocessConfig,
) -> tuple[list[Frame], np.ndarray]:  # fmt: skip
    """Decode chunk after chunk on the decode threads; each chunk's model run (bulk lane)
    overlaps the next chunk's decoding. Returns the frames and their raw probabilities."""
    rows_per_chunk = min(CHUNK_ROWS, max(1, state.config.max_queue_size // (2 * CHUNKS_IN_FLIGHT)))
    chunks = reader.chunks(indices, config, rows_per_chunk)  # a video fills half the queue at most
    frames: list[Frame] = []
    runs: list[asyncio.Task] = []
    try:
        while (chunk := await state.run_blocking(next, chunks, None)) is not None:
            frames += chunk
            rows = np.stack([frame.model_input for frame in chunk])
            runs.append(asyncio.ensure_future(infer(state, model, rows, bulk=True)))
            if len(runs) >= CHUNKS_IN_FLIGHT:  # decoding waits for the model: a video never
                await runs[-CHUNKS_IN_FLIGHT]  # holds more than this many chunks in the queue
        outputs = await asyncio.gather(*runs)
    except VideoError as exc:
        raise _api_error(exc) from None
    except APIError:
        raise
    except Exception as exc:  # e.g. the optional face detector failing: answer, keep serving
        logger.exception("video frame preprocessing failed")
        raise APIError(500, "preprocessing_failed", f"preprocessing failed: {exc}") from None
    finally:
        for run in runs:  # on failure: stop the other chunks, collect their errors
            if run.done() and not run.cancelled():
                run.exception()
            run.cancel()
    return frames, np.concatenate([probabilities(output) for output in outputs])


async def score_video(
    state: ServingState, model: LoadedModel, path: Path, sampling: Sampling,
    config: PreprocessConfig,
) -> dict:  # fmt: skip
    """The answer's fields (without latency) for the video at ``path``."""
    limits = state.config.video_limits
    try:
        reader = await state.run_blocking(VideoReader, path, limits)
    except VideoError as exc:
        raise _api_error(exc) from None
    try:
        try:
            indices = reader.sample(sampling)
        except VideoError as exc:
            raise _api_error(exc) from None
        frames, raw = await _decode_and_score(state, model, reader, indices, config)
    finally:
        await state.run_blocking(reader.close)
    calibrated = calibrate(raw, model.entry.temperature)
    verdict, results = judged(frames, calibrated, model.entry.decision, config.face_crop)
    shown = min(verdict["aggregation"]["k"], TOP_THUMBNAILS)  # the frames behind the verdict
    scores = [np.nan if r["probability_fake"] is None else r["probability_fake"] for r in results]
    top = np.argsort(-np.asarray(scores), kind="stable")[:shown]  # faceless frames (NaN) last
    thumbnails = await state.run_blocking(
        lambda: [base64.b64encode(encode_jpeg(frames[i].thumbnail, 80)).decode() for i in top]
    )
    return {
        **verdict,
        "threshold": model.entry.threshold,
        "model": model.name,
        "version": model.version,
        "video": reader.info.summary(),
        "sampling": {**sampling.summary(), "sampled": len(frames)},
        "face_crop": config.face_crop,
        "frames": results,
        "top_frames": [
            {**results[i], "thumbnail_jpeg_base64": thumb}
            for i, thumb in zip(top, thumbnails, strict=True)
        ],
    }


async def predict_video(request: Request) -> JSONResponse:
    """POST /v1/predict/video: a clip -> verdict, per-frame probabilities, top frames."""
    started = time.perf_counter()
    state: ServingState = request.app.state.serving
    query = request.query_params
    model = state.model(query.get("model"), query.get("version"))
    sampling = parse_sampling(query, state.config.video_limits)
    config = model.preprocess_config(state.config.max_pixels, face_crop_flag(query))
    busy = f"{state.config.video_concurrency} videos are already being scored"
    async with state.slot(state.video_slots, "video_busy", busy):
        folder = state.config.video_temp_dir
        async with received_video(request, state.config.video_max_bytes, folder) as path:
            body = await score_video(state, model, path, sampling, config)
    state.metrics.video_predictions.labels(model.name, str(model.version), body["label"]).inc()
    latency = round((time.perf_counter() - started) * 1000.0, 3)
    return JSONResponse({**body, "latency_ms": latency})
