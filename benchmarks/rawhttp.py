"""A minimal asyncio HTTP/1.1 client for the load generator: one keep-alive connection.

It exists because httpx spends far more client CPU per request (1.5-1.6 ms against
0.15-0.3 ms, docs/BENCHMARKS.md), and on a 2-core machine shared with the server every
client cycle is taken from the server. It speaks only what the benchmark needs: a POST (or
GET) with a body, responses framed by ``Content-Length``, chunked encoding or connection close.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from urllib.parse import urlsplit


class HttpError(ConnectionError):
    """The server's answer could not be parsed or the connection broke mid-response."""


class RawHttpConnection:
    """One HTTP/1.1 connection to ``base_url`` that reconnects when the server closes it."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only plain http:// URLs are supported, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def _head(
        self, method: str, path: str, content_type: str, length: int, headers: Mapping[str, str]
    ) -> bytes:
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Accept: application/json",
            f"Content-Length: {length}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        if length:
            lines.append(f"Content-Type: {content_type}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        content_type: str = "image/jpeg",
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> tuple[int, bytes]:
        """Send one request and return ``(status, body)``; retries once on a stale connection.
        Any failure (the timeout included) closes the socket: a half-done exchange never
        leaks into the next request."""
        head = self._head(method, path, content_type, len(body), headers or {})
        try:
            async with asyncio.timeout(timeout_s):
                return await self._request(head, body)
        except BaseException:
            await self.close()
            raise

    async def _request(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        reused = self._writer is not None
        try:
            return await self._exchange(head, body)
        except (HttpError, ConnectionError, asyncio.IncompleteReadError):
            await self.close()
            if not reused:
                raise
        return await self._exchange(head, body)  # the kept-alive socket had gone stale

    async def _exchange(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self._writer.write(head + body)  # one segment for small requests
        await self._writer.drain()
        raw_head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = raw_head.decode("latin-1").split("\r\n")
        try:
            version, status_text = status_line.split(" ", 2)[:2]
            status = int(status_text)
        except ValueError:
            raise HttpError(f"malformed status line {status_line!r}") from None
        headers = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip().lower()
        if "content-length" in headers:
            payload = await self._reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            payload = await self._read_chunked()
        else:
            payload = await self._reader.read()
            headers["connection"] = "close"
        if headers.get("connection") == "close" or version == "HTTP/1.0":
            await self.close()
        return status, payload

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        chunks = []
        while True:
            size_line = await self._reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")  # trailer end (no trailers expected)
                return b"".join(chunks)
            chunks.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    async def close(self) -> None:
        """Close the socket (a later request reconnects)."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
