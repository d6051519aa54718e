"""``/v1/explain``: parameters, the explainer interface, and the CAM explainer.

An explainer is one async function ``(ExplainRequest) -> ExplainResult``. ``cam`` lives
here; ``lime`` is ``serving.explain_lime.explain_lime`` and is picked up as soon as that
module exists (until then ``method=lime`` answers 501).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.datastructures import QueryParams

from serving.config import ServerConfig
from serving.errors import APIError
from serving.models import LoadedModel
from serving.overlay import cam_overlay
from serving.params import query_choice, query_int

METHODS = ("cam", "lime")
SEGMENTATIONS = ("quickshift", "slic")
OVERLAY_FORMATS = ("png", "jpeg")  # png: lossless; jpeg: a tenth of the bytes, faster
LIME_MODULE = "serving.explain_lime"


@dataclass(frozen=True)
class ExplainParams:
    method: str = "cam"
    num_samples: int = 1000
    num_features: int = 10
    segmentation: str = "quickshift"
    random_state: int = 0
    overlay: str = "png"


def parse_params(query: QueryParams, config: ServerConfig) -> ExplainParams:
    """Explain parameters from the query string; 400 when malformed, 422 when out of bounds."""
    max_samples = min(config.lime_max_samples, config.max_queue_size)
    return ExplainParams(
        method=query_choice(query, "method", "cam", METHODS),
        num_samples=query_int(query, "num_samples", min(1000, max_samples), 1, max_samples),
        num_features=query_int(query, "num_features", 10, 1, config.explain_max_features),
        segmentation=query_choice(query, "segmentation", "quickshift", SEGMENTATIONS),
        random_state=query_int(query, "random_state", 0, 0, 2**32 - 1),
        overlay=query_choice(query, "overlay", "png", OVERLAY_FORMATS),
    )


@dataclass
class ExplainRequest:
    """What an explainer gets: the image, the model, its prediction and ways to run more."""

    model: LoadedModel
    image_rgb: np.ndarray  # the uploaded image, upright, uint8 H x W x 3 (cut to the face crop)
    encode_overlay: Callable[[np.ndarray], str]  # blocking: uint8 RGB -> base64 PNG or JPEG
    model_input: np.ndarray  # what the model saw, float32 S x S x 3 (0..255)
    outputs: dict[str, np.ndarray]  # this image's model outputs, batch axis removed
    prediction: dict  # the /v1/predict fields for this image
    params: ExplainParams
    infer: Callable[[np.ndarray], Awaitable[dict[str, np.ndarray]]]  # rows [k,S,S,3] -> outputs
    run_blocking: Callable[..., Awaitable[Any]]  # run CPU-heavy work off the event loop
    run_background: Callable[..., Awaitable[Any]]  # the same at lower CPU priority (LIME)
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)

    def infer_blocking(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """``infer`` for code running in a worker thread (e.g. LIME's classifier_fn)."""
        return asyncio.run_coroutine_threadsafe(self.infer(rows), self.loop).result()


@dataclass
class ExplainResult:
    overlay_base64: str  # the encoded overlay, the full-size image's height and width
    width: int
    height: int
    regions: list[dict] | None = None  # lime: [{"id", "weight"}]
    extra: dict = field(default_factory=dict)  # method-specific fields merged into the answer


def render_overlay(
    request: ExplainRequest, draw: Callable[[np.ndarray], np.ndarray]
) -> tuple[str, int, int]:
    """Blocking, in one thread: ``draw`` over the upload and encode the result; the encoded
    overlay, its width and its height."""
    rgb = request.image_rgb
    overlay = draw(rgb)
    if overlay.shape[:2] != rgb.shape[:2]:
        raise APIError(500, "internal_error", "explainer drew an overlay of the wrong size")
    height, width = rgb.shape[:2]
    return request.encode_overlay(overlay), int(width), int(height)


async def explain_cam(request: ExplainRequest) -> ExplainResult:
    """The model's own class-activation map, upsampled and colour-blended over the image."""
    if "cam" not in request.outputs:
        raise APIError(
            501, "cam_unavailable", f"model {request.model.name} has no 'cam' output; use lime"
        )
    cam = np.asarray(request.outputs["cam"], dtype=np.float32)
    encoded, width, height = await request.run_blocking(
        render_overlay, request, lambda rgb: cam_overlay(rgb, cam)
    )
    return ExplainResult(
        encoded,
        width,
        height,
        extra={"cam": {"shape": list(cam.shape), "min": float(cam.min()), "max": float(cam.max())}},
    )


def find_explainer(method: str) -> Callable[[ExplainRequest], Awaitable[ExplainResult]]:
    """The explainer function for ``method``; 501 when LIME is not installed in this build."""
    if method == "cam":
        return explain_cam
    try:
        module = importlib.import_module(LIME_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != LIME_MODULE:
            raise
        raise APIError(
            501,
            "not_implemented",
            "method=lime is not available on this server yet; use method=cam",
        ) from None
    return module.explain_lime
