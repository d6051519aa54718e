"""The Starlette application: routes of docs/CONTRACTS.md, lifespan, middleware.

``create_app(config)`` builds an app; its lifespan loads the repository, builds one
session and one batcher per model version, warms them up, then marks the app ready.
All state lives in ``app.state.serving`` (:class:`serving.state.ServingState`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import numpy as np
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from core.preprocessing import PreprocessConfig, Preprocessed
from serving import kserve, video
from serving.access import access_middleware
from serving.config import ServerConfig
from serving.errors import (
    EXCEPTION_HANDLERS,
    APIError,
    bad_parameter,
)
from serving.evidence import alongside
from serving.explain import ExplainRequest, find_explainer, parse_params
from serving.inference import (
    infer,
    prediction,
    preprocess_and_infer,
    preprocess_off_loop,
    probabilities,
    scored_prediction,
)
from serving.metrics import RequestMetricsMiddleware
from serving.middleware import BodyLimitMiddleware, SecurityHeadersMiddleware
from serving.models import LoadedModel
from serving.openapi import API_VERSION, openapi_document
from serving.overlay import OVERLAY_ENCODERS
from serving.params import face_crop_flag
from serving.state import ServingState
from serving.uploads import media_type, read_image, read_images


def _state(request: Request) -> ServingState:
    return request.app.state.serving


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


def _face_crop(request: Request) -> bool | None:
    """The ``face_crop`` query flag; None (absent) means the model's own contract."""
    return face_crop_flag(request.query_params)


def _requested_model(request: Request, state: ServingState):
    return state.model(request.query_params.get("model"), request.query_params.get("version"))


def _model_and_contract(
    request: Request, state: ServingState
) -> tuple[LoadedModel, PreprocessConfig]:
    """The requested model and its contract for this request: its face crop (or the query's
    ``face_crop``), every face up to ``--max-faces``."""
    model = _requested_model(request, state)
    config = model.preprocess_config(
        state.config.max_pixels, _face_crop(request), state.config.max_faces
    )
    return model, config


async def predict(request: Request) -> JSONResponse:
    """POST /v1/predict: one image -> label, calibrated probability, confidence."""
    started = time.perf_counter()
    state = _state(request)
    model, config = _model_and_contract(request, state)
    with model.batcher.incoming() as announcement:
        upload = await read_image(request)
        scored, [evidence] = await alongside(
            state,
            [upload.data],
            preprocess_and_infer(state, model, upload.data, config, announcement),
        )
    body = scored_prediction(state, model, scored)
    return JSONResponse({**body, **evidence, "latency_ms": _elapsed_ms(started)})


async def predict_batch(request: Request) -> JSONResponse:
    """POST /v1/predict/batch: several files -> one result (or error) per file, in order."""
    started = time.perf_counter()
    state = _state(request)
    model, config = _model_and_contract(request, state)

    async def attempt(data: bytes) -> Preprocessed | APIError:
        try:
            return await preprocess_off_loop(state, data, config)
        except APIError as exc:
            return exc

    with model.batcher.incoming():
        uploads = await read_images(request, state.config.max_batch_files)
        rows, evidence = await alongside(
            state,
            [upload.data for upload in uploads],
            asyncio.gather(*(attempt(upload.data) for upload in uploads)),
        )
    good = [row.model_rows() for row in rows if isinstance(row, Preprocessed) and not row.no_face]
    probs = probabilities(await infer(state, model, np.concatenate(good))) if good else []
    results, start = [], 0
    for upload, row, found in zip(uploads, rows, evidence, strict=True):
        if isinstance(row, APIError):
            results.append({"filename": upload.filename, **row.body()})
        elif row.no_face:
            results.append({"filename": upload.filename, **prediction(state, model, None, row),
                            **found})  # fmt: skip
        else:
            count = len(row.model_rows())
            body = prediction(state, model, probs[start : start + count], row)
            start += count
            results.append({"filename": upload.filename, **body, **found})
    return JSONResponse(
        {
            "model": model.name,
            "version": model.version,
            "results": results,
            "latency_ms": _elapsed_ms(started),
        }
    )


async def explain(request: Request) -> JSONResponse:
    """POST /v1/explain: prediction plus an overlay PNG of the uploaded image's size."""
    started = time.perf_counter()
    state = _state(request)
    model = _requested_model(request, state)
    params = parse_params(request.query_params, state.config)
    explainer = find_explainer(params.method)
    config = model.preprocess_config(state.config.max_pixels)
    if _face_crop(request) not in (None, config.face_crop):
        raise bad_parameter(
            f"/v1/explain follows the model's contract (face_crop={str(config.face_crop).lower()})"
        )
    # The model input comes from the same path as /v1/predict (same answer for the same
    # upload); the overlay is drawn over every pixel of the upload (no JPEG draft reduction),
    # or of the face crop for models trained on face crops.
    with model.batcher.incoming() as announcement:
        upload = await read_image(request)
        scored = await preprocess_and_infer(  # LIME's own bulk rows follow: no hold on them
            state, model, upload.data, config, announcement, full_size=True,
            holds_bulk=params.method != "lime",
        )  # fmt: skip
    if scored.outputs is None:  # no face: no verdict, nothing to explain
        body = {"prediction": scored_prediction(state, model, scored), "method": params.method}
        return JSONResponse({**body, "latency_ms": _elapsed_ms(started)})
    assert scored.upload.full_size is not None
    context = ExplainRequest(
        model=model,
        image_rgb=scored.upload.full_size,
        encode_overlay=OVERLAY_ENCODERS[params.overlay],
        model_input=scored.upload.model_input,
        outputs={name: value[0] for name, value in scored.outputs.items()},
        prediction=scored_prediction(state, model, scored),
        params=params,
        infer=lambda rows: infer(state, model, rows, bulk=True),
        run_blocking=state.run_blocking,
        run_background=state.run_background,
    )
    if params.method == "cam":
        result = await explainer(context)
    else:
        assert state.lime_slots is not None
        busy = f"{state.config.lime_concurrency} LIME explanations are already running"
        async with state.slot(state.lime_slots, "explain_busy", busy):
            result = await explainer(context)
    body = {
        "prediction": context.prediction,
        "method": params.method,
        f"overlay_{params.overlay}_base64": result.overlay_base64,
        "width": result.width,
        "height": result.height,
        **result.extra,
    }
    if result.regions is not None:
        body["regions"] = result.regions
    return JSONResponse({**body, "latency_ms": _elapsed_ms(started)})


async def list_models(request: Request) -> JSONResponse:
    """GET /v1/models."""
    state = _state(request)
    return JSONResponse(
        {
            "default": state.pool.default_name,
            "models": [model.summary(ready=state.ready) for model in state.pool],
        }
    )


async def live(request: Request) -> JSONResponse:
    """GET /v2/health/live: the process answers."""
    return JSONResponse({"live": True})


async def ready(request: Request) -> JSONResponse:
    """GET /v2/health/ready: 200 after warm-up, 503 before, without models or when stopping."""
    state = _state(request)
    state.require_serving()
    return JSONResponse({"ready": True, "models": [f"{m.name}:{m.version}" for m in state.pool]})


async def server_metadata(request: Request) -> JSONResponse:
    """GET /v2: KServe v2 server metadata."""
    return JSONResponse({"name": "deepfake-detect", "version": API_VERSION, "extensions": []})


async def openapi(request: Request) -> JSONResponse:
    """GET /openapi.json: the API's OpenAPI 3.1 description (serving/openapi.py)."""
    return JSONResponse(openapi_document(API_VERSION))


async def v2_model_metadata(request: Request) -> JSONResponse:
    """GET /v2/models/{name} and /v2/models/{name}/versions/{version}."""
    state = _state(request)
    name, version = request.path_params["name"], request.path_params.get("version")
    model = state.pool.resolve(name, version)
    versions = [state.pool.resolve(name, v) for v in state.pool.versions(name)]
    return JSONResponse(kserve.model_metadata([model] if version else versions))


async def v2_model_ready(request: Request) -> JSONResponse:
    """GET /v2/models/{name}[/versions/{version}]/ready."""
    state = _state(request)
    state.model(request.path_params["name"], request.path_params.get("version"))
    return JSONResponse({"name": request.path_params["name"], "ready": True})


async def v2_infer(request: Request) -> JSONResponse:
    """POST /v2/models/{name}[/versions/{version}]/infer: KServe v2 JSON tensors."""
    state = _state(request)
    model = state.model(request.path_params["name"], request.path_params.get("version"))
    kind = media_type(request)
    if kind not in ("", "application/json"):
        raise APIError(415, "unsupported_media_type", f"send application/json, not {kind}")
    payload = await state.run_blocking(kserve.parse_json, await request.body())
    rows, names, request_id = kserve.parse_infer_request(payload, model)
    outputs = await infer(state, model, rows)
    body = await state.run_blocking(kserve.infer_response, model, outputs, names, request_id)
    return JSONResponse(body)


async def metrics(request: Request) -> Response:
    """GET /metrics: Prometheus text format."""
    registry = _state(request).metrics
    return Response(registry.render(), media_type=registry.content_type)


def _webui_routes(config: ServerConfig) -> list[BaseRoute]:
    folder = config.webui_dir

    async def index(request: Request) -> Response:
        page = folder / "index.html" if folder else None
        if page is None or not page.is_file():
            raise APIError(
                404, "webui_missing", "the web UI is not installed; the API is under /v1 and /v2"
            )
        return FileResponse(page, media_type="text/html")

    routes: list[BaseRoute] = [Route("/", index, methods=["GET", "HEAD"])]
    if folder and folder.is_dir():
        routes.append(Mount("/static", app=StaticFiles(directory=folder), name="static"))
    return routes


def _routes(config: ServerConfig) -> list[BaseRoute]:
    v2_model = "/v2/models/{name}"
    v2_version = "/v2/models/{name}/versions/{version}"
    return [
        Route("/v1/predict", predict, methods=["POST"]),
        Route("/v1/predict/batch", predict_batch, methods=["POST"]),
        Route("/v1/explain", explain, methods=["POST"]),
        Route(video.PATH, video.predict_video, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route(v2_model, v2_model_metadata, methods=["GET"]),
        Route(v2_version, v2_model_metadata, methods=["GET"]),
        Route(v2_model + "/ready", v2_model_ready, methods=["GET"]),
        Route(v2_version + "/ready", v2_model_ready, methods=["GET"]),
        Route(v2_model + "/infer", v2_infer, methods=["POST"]),
        Route(v2_version + "/infer", v2_infer, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        *_webui_routes(config),
    ]


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    state: ServingState = app.state.serving
    await state.start()
    try:
        yield
    finally:
        await state.stop()


def create_app(config: ServerConfig | None = None) -> Starlette:
    """A new, independent server app (own models, batchers, metrics registry)."""
    config = config or ServerConfig()
    state = ServingState(config)
    app = Starlette(
        routes=_routes(config),
        middleware=[
            Middleware(SecurityHeadersMiddleware),
            Middleware(RequestMetricsMiddleware, metrics=state.metrics),
            *access_middleware(config, state.metrics),  # CORS, API keys, rate limits
            Middleware(
                BodyLimitMiddleware,
                max_bytes=config.max_body_bytes,
                path_limits=video.body_limits(config),
            ),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=_lifespan,
    )
    app.state.serving = state
    return app


def create_app_from_env() -> Starlette:
    """Uvicorn factory (``--factory``): the config comes from the ``DFD_*`` variables."""
    config = ServerConfig.from_env()
    configure_logging(config.log_level)  # worker processes start without logging set up
    return create_app(config)


def configure_logging(level: str) -> None:
    """Log ``serving.*`` messages at ``level`` unless the process already set up logging."""
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("serving").setLevel(level.upper())
