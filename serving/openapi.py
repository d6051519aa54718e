"""The OpenAPI 3.1 description of the HTTP API (docs/CONTRACTS.md), served at ``/openapi.json``.

Kept by hand beside the routes: ``tests/test_openapi.py`` checks that it is valid OpenAPI 3.1
(``openapi-spec-validator``), that it lists every route of the app with its methods and every
status code CONTRACTS.md documents, and that real answers match its schemas.
"""

from __future__ import annotations

from typing import Any

from core.decision import NO_FACE, UNCERTAIN, VERDICTS

API_VERSION = "1"  # of the HTTP contract (docs/CONTRACTS.md); also GET /v2's version
Schema = dict[str, Any]
JSON = "application/json"
IMAGE_TYPES = ("image/*", "application/octet-stream")
VIDEO_TYPES = ("video/*", "application/octet-stream")

ERRORS = {  # status -> when (docs/CONTRACTS.md "Status codes")
    400: "not an image, corrupt or truncated, malformed JSON or a bad parameter",
    401: "API key missing or wrong (only with --api-keys)",
    404: "unknown model or version",
    413: "body or image pixels over the limit",
    415: "wrong content type or unsupported image or video format",
    422: "a parameter over its bound (the message states the bound)",
    429: "rate limit reached (only with --rate); Retry-After says when to retry",
    501: "explainer not available",
    503: "queue full, not ready or shutting down; Retry-After says when to retry",
    504: "the request timed out in the queue",
}
UPLOAD_ERRORS = (400, 401, 404, 413, 415, 422, 429, 503, 504)


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def number(low: float | None = None, high: float | None = None) -> Schema:
    bounds = {"minimum": low} if low is not None else {}
    return {"type": "number"} | bounds | ({"maximum": high} if high is not None else {})


def obj(properties: dict[str, Schema], required: tuple[str, ...] = (), **more: Any) -> Schema:
    return {"type": "object", "properties": properties, "required": list(required)} | more


def json_answer(description: str, schema: Schema) -> dict:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def error_answers(statuses: tuple[int, ...]) -> dict[str, dict]:
    answers = {}
    for status in statuses:
        answer = json_answer(ERRORS[status], ref("Error"))
        if status in (429, 503):
            answer["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 0}}}
        answers[str(status)] = answer
    return answers


def query(name: str, schema: Schema, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


def path_param(name: str, schema: Schema) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema}


MODEL_QUERY = [
    query("model", {"type": "string"}, "model name (default: the server's default model)"),
    query("version", {"type": "integer", "minimum": 1}, "model version (default: the latest)"),
    query("face_crop", {"type": "boolean"}, "override the model's face crop (false: whole image)"),
]


def upload_body(field: str, raw_types: tuple[str, ...], many: bool = False) -> dict:
    """A multipart form with ``field`` (one file, or several) or the raw bytes."""
    part = {"type": "string", "contentMediaType": "application/octet-stream"}
    files = {"type": "array", "items": part} if many else part
    content = {"multipart/form-data": {"schema": obj({field: files}, (field,))}}
    for kind in raw_types:
        content[kind] = {"schema": {"type": "string", "contentMediaType": kind}}
    return {"required": True, "content": content}


VERDICT = {"type": "string", "enum": [*VERDICTS, NO_FACE]}


def prediction_schema() -> Schema:
    """One image's answer: the verdict, every face judged, the evidence."""
    return obj(
        {
            "label": VERDICT | {"description": f"{UNCERTAIN} between the two thresholds"},
            "probability_fake": nullable(number(0, 1)),
            "confidence": nullable(number(0, 1)),
            "threshold": number(0, 1),
            "decision": ref("Decision"),
            "face": nullable(ref("Face")),
            "message": {"type": "string", "description": "why there is no verdict"},
            "frames": obj(
                {
                    "count": {"type": "integer"},
                    "judged": {"const": "first"},
                    "note": {"type": "string"},
                },
                ("count", "judged"),
            ),  # fmt: skip
            "faces": {"type": "array", "items": ref("FaceVerdict"),
                      "description": "every face judged, left to right (face-crop models)"},
            "overall": obj({"rule": {"type": "string"}, "face": {"type": "integer"}},
                           ("rule", "face")),
            "model": {"type": "string"},
            "version": {"type": "integer"},
            "evidence": {"type": "array", "items": ref("Evidence")},
            "latency_ms": number(0),
        },
        ("label", "probability_fake", "confidence", "decision", "model", "version"),
    )  # fmt: skip


def verdict_schemas() -> dict[str, Schema]:
    """Errors, decisions, faces, evidence and the prediction of one image."""
    face = obj(
        {
            "box": {"type": "array", "items": number(), "minItems": 4, "maxItems": 4},
            "landmarks": {"type": "array", "items": {"type": "array", "items": number()}},
            "score": number(0, 1),
            "image_size": {"type": "array", "items": {"type": "integer"}},
        },
        ("box", "landmarks", "score"),
    )
    face_verdict = obj(
        {"face": ref("Face"), "label": VERDICT, "probability_fake": number(0, 1),
         "confidence": number(0, 1)},
        ("face", "label", "probability_fake", "confidence"),
    )  # fmt: skip
    return {
        "ErrorDetail": obj(
            {"code": {"type": "string"}, "message": {"type": "string"}}, ("code", "message")
        ),
        "Error": obj({"error": ref("ErrorDetail")}, ("error",)),
        "Decision": obj(
            {"real_below": number(0, 1), "fake_from": number(0, 1)}, ("real_below", "fake_from")
        ),  # fmt: skip
        "Face": face,
        "FaceVerdict": face_verdict,
        "Evidence": obj(
            {
                "kind": {"type": "string"},
                "strength": {"type": "string"},
                "suggests": {"type": "string"},
                "says": {"type": "string"},
                "field": {"type": "string"},
                "details": {"type": "object"},
            },
            ("kind", "strength", "says"),
        ),
        "Prediction": prediction_schema(),
    }


def answer_schemas() -> dict[str, Schema]:
    """The answers of the batch and explanation routes."""
    failed_file = obj({"filename": {"type": "string"}, "error": ref("ErrorDetail")},
                      ("error",))  # fmt: skip
    return {
        "BatchResult": obj(
            {
                "model": {"type": "string"},
                "version": {"type": "integer"},
                "results": {
                    "type": "array",
                    "items": {"anyOf": [ref("Prediction"), failed_file]},
                },
            },
            ("results",),
        ),  # fmt: skip
        "Explanation": obj(
            {
                "prediction": ref("Prediction"),
                "method": {"type": "string", "enum": ["cam", "lime"]},
                "overlay_png_base64": {"type": "string", "contentEncoding": "base64"},
                "overlay_jpeg_base64": {"type": "string", "contentEncoding": "base64"},
                "width": {"type": "integer"},
                "height": {"type": "integer"},
                "regions": {
                    "type": "array",
                    "items": obj({"id": {"type": "integer"}, "weight": number()}),
                },
                "latency_ms": number(0),
            },
            ("prediction", "method"),
        ),  # fmt: skip
    }


def route_schemas() -> dict[str, Schema]:
    """The answers of the video and models routes."""
    return {
        "VideoPrediction": obj(
            {
                "label": VERDICT,
                "probability_fake": nullable(number(0, 1)),
                "confidence": nullable(number(0, 1)),
                "decision": ref("Decision"),
                "aggregation": {"type": "object"},
                "video": {"type": "object"},
                "sampling": {"type": "object"},
                "frames": {"type": "array", "items": {"type": "object"}},
                "top_frames": {"type": "array", "items": {"type": "object"}},
                "model": {"type": "string"},
                "version": {"type": "integer"},
                "latency_ms": number(0),
            },
            ("label", "probability_fake", "frames", "model", "version"),
        ),
        "Models": obj(
            {
                "default": nullable({"type": "string"}),
                "models": {"type": "array", "items": ref("ModelSummary")},
            },
            ("default", "models"),
        ),  # fmt: skip
        "ModelSummary": obj(
            {
                "name": {"type": "string"},
                "version": {"type": "integer"},
                "threshold": number(0, 1),
                "decision": ref("Decision"),
                "temperature": number(0),
                "face_crop": {"type": "boolean"},
                "metrics": {
                    "type": "object",
                    "description": "test metrics and, where "
                    "measured, the source-holdout folds (metrics.holdout)",
                },
                "training_data": nullable({"type": "string"}),
                "ready": {"type": "boolean"},
            },
            ("name", "version", "threshold", "metrics"),
        ),  # fmt: skip
    }


def kserve_schemas() -> dict[str, Schema]:
    """KServe v2 tensors, requests and answers."""
    return {
        "V2Tensor": obj(
            {
                "name": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer"}},
                "datatype": {"type": "string"},
                "data": {"type": "array"},
            },
            ("name", "shape", "datatype", "data"),
        ),
        "V2InferRequest": obj(
            {
                "id": {"type": "string"},
                "inputs": {"type": "array", "items": ref("V2Tensor")},
                "outputs": {"type": "array", "items": obj({"name": {"type": "string"}})},
            },
            ("inputs",),
        ),  # fmt: skip
        "V2InferResponse": obj(
            {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {"type": "array", "items": ref("V2Tensor")},
            },
            ("model_name", "outputs"),
        ),  # fmt: skip
    }


def components() -> dict:
    schemas = verdict_schemas() | answer_schemas() | route_schemas() | kserve_schemas()
    return {"schemas": schemas}


def operation(summary: str, answer: dict, errors: tuple[int, ...], **more: Any) -> dict:
    return {"summary": summary, "responses": {"200": answer, **error_answers(errors)}} | more


def v2_paths() -> dict:
    name = path_param("name", {"type": "string"})
    version = path_param("version", {"type": "integer", "minimum": 1})
    paths = {}
    for base, params in (("/v2/models/{name}", [name]),
                         ("/v2/models/{name}/versions/{version}", [name, version])):  # fmt: skip
        paths[base] = {"get": operation(
            "KServe v2 model metadata", json_answer("model metadata", {"type": "object"}),
            (400, 401, 404, 429), parameters=params)}  # fmt: skip
        paths[base + "/ready"] = {"get": operation(
            "KServe v2 model readiness", json_answer("ready", {"type": "object"}),
            (400, 401, 404, 429, 503), parameters=params)}  # fmt: skip
        paths[base + "/infer"] = {"post": operation(
            "KServe v2 inference on preprocessed tensors [N, 224, 224, 3] FP32",
            json_answer("raw probability_fake (and cam on request)", ref("V2InferResponse")),
            (400, 401, 404, 413, 415, 422, 429, 503, 504), parameters=params,
            requestBody={"required": True,
                         "content": {JSON: {"schema": ref("V2InferRequest")}}})}  # fmt: skip
    return paths


def v1_paths() -> dict:
    """The image, batch, explanation and video routes."""
    explain_query = [
        query("method", {"enum": ["cam", "lime"]}, "cam (default) or lime"),
        query("overlay", {"enum": ["png", "jpeg"]}, "overlay image format"),
        query("num_samples", {"type": "integer", "minimum": 1}, "LIME samples"),
        query("num_features", {"type": "integer", "minimum": 1}, "LIME regions shown"),
        query("segmentation", {"enum": ["quickshift", "slic"]}, "LIME superpixels"),
        query("random_state", {"type": "integer"}, "LIME seed"),
    ]
    video_query = [
        query("frames", {"type": "integer", "minimum": 1}, "frames sampled evenly (32)"),
        query("fps", {"type": "number", "exclusiveMinimum": 0}, "frames sampled per second"),
    ]
    return {
        "/v1/predict": {"post": operation(
            "Judge one image: REAL, UNCERTAIN or FAKE with a calibrated probability, or "
            "NO_FACE", json_answer("the verdict", ref("Prediction")), UPLOAD_ERRORS,
            parameters=MODEL_QUERY, requestBody=upload_body("file", IMAGE_TYPES))},
        "/v1/predict/batch": {"post": operation(
            "Judge several images; one result or error per file, in order",
            json_answer("one result per file", ref("BatchResult")), UPLOAD_ERRORS,
            parameters=MODEL_QUERY, requestBody=upload_body("files", (), many=True))},
        "/v1/explain": {"post": operation(
            "A verdict and a picture of why (class-activation map or LIME)",
            json_answer("verdict and overlay", ref("Explanation")), (*UPLOAD_ERRORS, 501),
            parameters=MODEL_QUERY + explain_query,
            requestBody=upload_body("file", IMAGE_TYPES))},
        "/v1/predict/video": {"post": operation(
            "Judge a clip frame by frame", json_answer("the clip's verdict",
                                                         ref("VideoPrediction")),
            UPLOAD_ERRORS, parameters=MODEL_QUERY + video_query,
            requestBody=upload_body("file", VIDEO_TYPES))},
    }  # fmt: skip


def openapi_document(version: str) -> dict:
    """The whole description (OpenAPI 3.1.0) for server ``version``."""
    paths = {
        **v1_paths(),
        "/v1/models": {"get": operation(
            "Loaded models, their thresholds, metrics and training data",
            json_answer("the models", ref("Models")), (401, 429))},
        "/v2": {"get": operation("KServe v2 server metadata",
                                 json_answer("server metadata", {"type": "object"}),
                                 (401, 429))},
        "/v2/health/live": {"get": operation("Liveness", json_answer("live", {"type": "object"}),
                                             ())},
        "/v2/health/ready": {"get": operation(
            "Readiness: 200 after warm-up", json_answer("ready", {"type": "object"}), (503,))},
        **v2_paths(),
        "/metrics": {"get": operation(
            "Prometheus metrics", {"description": "Prometheus text format",
                                   "content": {"text/plain": {"schema": {"type": "string"}}}},
            (401, 429))},
        "/": {"get": operation("The web page", {"description": "the upload page",
                                                "content": {"text/html": {}}}, (404,))},
        "/openapi.json": {"get": operation(
            "This description", json_answer("OpenAPI 3.1", {"type": "object"}), ())},
    }  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Deepfake face image detection",
            "version": version,
            "description": "Upload a face photo or a clip; get REAL, UNCERTAIN or FAKE with a "
            "calibrated probability (docs/CONTRACTS.md). Errors are "
            '{"error": {"code", "message"}}.',
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "paths": paths,
        "components": components()
        | {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "MethodNotAllowed": json_answer(
                    "405: any route called with a method it does not take", ref("Error")
                )
            },
        },
    }
