"""Video uploads stream straight into a temporary file (OpenCV reads from a path).

The body is the multipart field ``file`` (parsed as it arrives with python-multipart, other
fields skipped) or the raw body with a ``video/*`` or ``application/octet-stream`` type. The
size cap is enforced while reading; the file is deleted when the request is done, whatever
happened: scored, refused, failed, or the client went away mid-upload.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from serving.errors import APIError, bad_parameter
from serving.uploads import RAW_TYPES, media_type

FIELD = "file"
FLUSH_BYTES = 1024 * 1024  # written to disk (off the event loop) in pieces of about this size


def _malformed(detail: str) -> APIError:
    return APIError(400, "malformed_multipart", f"malformed multipart body: {detail}")


class _FilePart:
    """python-multipart callbacks that keep the data of the ``file`` field only."""

    def __init__(self, content_type: str) -> None:
        _, options = parse_options_header(content_type)
        if b"boundary" not in options:
            raise _malformed("no boundary in Content-Type")
        self.pieces: list[bytes] = []
        self.found = self.ended = False
        self._in_file = False
        self._header = self._value = b""
        self._disposition = b""
        callbacks = {
            "on_header_field": lambda data, start, end: self._add("_header", data[start:end]),
            "on_header_value": lambda data, start, end: self._add("_value", data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }
        self.parser = MultipartParser(options[b"boundary"], callbacks)

    def _add(self, name: str, data: bytes) -> None:
        setattr(self, name, getattr(self, name) + data)

    def _header_end(self) -> None:
        if self._header.lower() == b"content-disposition":
            self._disposition = self._value
        self._header = self._value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._in_file = options.get(b"name") == FIELD.encode()
        if self._in_file and self.found:
            raise bad_parameter(f"send one video per request (one field {FIELD!r})")
        self.found = self.found or self._in_file

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.pieces.append(data[start:end])

    def _part_end(self) -> None:
        self._in_file = False
        self._disposition = b""

    def _end(self) -> None:
        self.ended = True

    def feed(self, chunk: bytes) -> list[bytes]:
        """The file bytes in ``chunk`` (possibly none)."""
        try:
            self.parser.write(chunk)
        except FormParserError as exc:
            raise _malformed(str(exc)) from None
        pieces, self.pieces = self.pieces, []
        return pieces

    def finish(self) -> None:
        if not self.ended:
            raise _malformed("it ends before its closing boundary")
        if not self.found:
            raise bad_parameter(f"multipart body has no field {FIELD!r}")


class _CappedWriter:
    """Buffers bytes and writes them to ``handle`` in a worker thread; 413 past ``limit``."""

    def __init__(self, handle: BinaryIO, limit: int) -> None:
        self.handle, self.limit = handle, limit
        self.size = 0
        self._buffer = bytearray()

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise APIError(
                413, "payload_too_large", f"the video is over the {self.limit} byte limit"
            )
        self._buffer += data
        if len(self._buffer) >= FLUSH_BYTES:
            await self.flush()

    async def flush(self) -> None:
        if self._buffer:
            data, self._buffer = bytes(self._buffer), bytearray()
            await run_in_threadpool(self.handle.write, data)


async def _receive(request: Request, writer: _CappedWriter) -> None:
    kind = media_type(request)
    if kind == "multipart/form-data":
        part = _FilePart(request.headers.get("content-type", ""))
        async for chunk in request.stream():
            for piece in part.feed(chunk):
                await writer.write(piece)
        part.finish()
    elif kind.startswith("video/") or kind in RAW_TYPES:
        async for chunk in request.stream():
            await writer.write(chunk)
    else:
        raise APIError(
            415,
            "unsupported_media_type",
            f"unsupported Content-Type {kind or '(none)'}: send multipart/form-data with a "
            f"field {FIELD!r}, or the raw video with Content-Type video/* or "
            "application/octet-stream",
        )
    await writer.flush()


@contextlib.asynccontextmanager
async def received_video(
    request: Request, max_bytes: int, folder: Path | None
) -> AsyncIterator[Path]:
    """The uploaded video as a temporary file, deleted when the block exits (always)."""
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed below, deleted in finally)
        prefix="dfd-video-", suffix=".upload", dir=folder, delete=False
    )
    path = Path(handle.name)
    try:
        with handle:
            await _receive(request, _CappedWriter(handle, max_bytes))
        yield path
    finally:
        path.unlink(missing_ok=True)
