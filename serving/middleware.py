"""Pure ASGI middleware: security headers on every answer, request body size limit."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.errors import SECURITY_HEADERS, APIError, error_response


class SecurityHeadersMiddleware:
    """Adds CSP, nosniff, Referrer-Policy and X-Frame-Options unless a route set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(APIError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "payload_too_large", f"request body is over the {limit} byte limit")


class BodyLimitMiddleware:
    """Refuses bodies over ``max_bytes`` (or the path's own limit in ``path_limits``): from
    Content-Length before reading anything, and while streaming by counting received bytes
    (the rest of the body is never read)."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, path_limits: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = dict(path_limits or {})  # routes with their own limit (videos)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope["path"], self.max_bytes)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            error = None
            if not (declared.strip().isascii() and declared.strip().isdigit()):
                error = APIError(400, "bad_request", f"invalid Content-Length {declared!r}")
            elif int(declared) > limit:
                error = BodyTooLarge(limit)
            if error is not None:
                error.headers["Connection"] = "close"
                await error_response(error)(scope, receive, send)
                return
        received = 0

        async def receive_with_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)  # becomes a JSON 413 (errors.py)
            return message

        await self.app(scope, receive_with_limit, send)
