"""Every error leaves the server as ``{"error": {"code": ..., "message": ...}}`` (CONTRACTS.md)."""

from __future__ import annotations

import http
import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from core.modelrepo import InvalidModelName, ModelNotFound
from core.preprocessing import ImageError

logger = logging.getLogger("serving")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

_CODES_BY_STATUS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "parameter_out_of_range",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
    504: "timeout",
}


class APIError(Exception):
    """An error with its HTTP status, snake_case code, human message and extra headers."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


def bad_parameter(message: str) -> APIError:
    return APIError(400, "bad_parameter", message)


def out_of_range(message: str) -> APIError:
    return APIError(422, "parameter_out_of_range", message)


def unavailable(code: str, message: str, retry_after_s: int) -> APIError:
    return APIError(503, code, message, {"Retry-After": str(retry_after_s)})


def from_image_error(exc: ImageError) -> APIError:
    return APIError(exc.status, exc.code, str(exc))


def error_response(error: APIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


async def handle_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, APIError)
    return error_response(exc)


async def handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own 404 / 405 / multipart 400 in the contract's JSON shape."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    phrase = http.HTTPStatus(status).phrase if status in http.HTTPStatus._value2member_map_ else ""
    message = exc.detail if exc.detail and exc.detail != phrase else None
    if status == 404:
        message = message or f"nothing at {request.url.path}"
    elif status == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"method {request.method} not allowed on {request.url.path}; use {allowed}"
    code = _CODES_BY_STATUS.get(status, "http_error")
    return error_response(APIError(status, code, message or phrase, dict(exc.headers or {})))


async def handle_image_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ImageError)
    return error_response(from_image_error(exc))


async def handle_model_not_found(request: Request, exc: Exception) -> JSONResponse:
    return error_response(APIError(404, "model_not_found", str(exc)))


async def handle_invalid_name(request: Request, exc: Exception) -> JSONResponse:
    return error_response(APIError(400, "invalid_model_name", str(exc)))


async def handle_disconnect(request: Request, exc: Exception) -> JSONResponse:
    """The client went away mid-upload: nobody reads this answer, and it is not a server bug."""
    logger.info("client disconnected during %s %s", request.method, request.url.path)
    return error_response(APIError(400, "client_disconnected", "the client closed the request"))


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Last resort (outside the other middleware, so it adds the security headers itself)."""
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    error = APIError(500, "internal_error", "internal server error; see the server log")
    return JSONResponse(error.body(), status_code=500, headers=SECURITY_HEADERS)


EXCEPTION_HANDLERS = {
    APIError: handle_api_error,
    HTTPException: handle_http_exception,
    ImageError: handle_image_error,
    ModelNotFound: handle_model_not_found,
    InvalidModelName: handle_invalid_name,
    ClientDisconnect: handle_disconnect,
    Exception: handle_unexpected,
}
