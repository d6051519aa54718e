"""A plain HTTP client for hostile requests: exact request targets, raw streamed bodies.

``httpx`` normalises URLs (``/a/../b`` becomes ``/b``) and sends a whole body before it
reads the answer, so these tests talk through ``http.client`` (the target goes out byte for
byte) and, for oversized uploads, a raw socket that notices the answer while still sending.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
import uuid
from dataclasses import dataclass, field


@dataclass
class Answer:
    """One HTTP answer (header names in lower case)."""

    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> object:
        return json.loads(self.body)

    def error(self) -> dict | None:
        """``{"code", "message"}`` if the body has the contract's error shape, else None."""
        try:
            body = self.json()
        except ValueError:
            return None
        if not isinstance(body, dict) or set(body) != {"error"}:
            return None
        error = body["error"]
        if not isinstance(error, dict) or set(error) != {"code", "message"}:
            return None
        if not (isinstance(error["code"], str) and isinstance(error["message"], str)):
            return None
        return error if error["code"] and error["message"] else None


def request(
    port: int,
    method: str,
    target: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    timeout_s: float = 30.0,
) -> Answer:
    """Send one request with ``target`` exactly as given (path and query, percent-encoded)."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    answer_headers = {name.lower(): value for name, value in response.getheaders()}
    return Answer(response.status, answer_headers, payload, time.perf_counter() - started)


def multipart(parts: list[tuple[str, str | None, str | None, bytes]]) -> tuple[bytes, str]:
    """``(body, content_type)`` of a multipart/form-data body.

    Each part is ``(field name, file name or None for a text field, content type, data)``.
    """
    boundary = uuid.uuid4().hex
    chunks = []
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        chunks.append(head.encode() + b"\r\n" + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


@dataclass
class StreamResult:
    """What happened while streaming a large body."""

    status: int | None  # None: no answer came back
    sent_bytes: int  # body bytes written before the answer was seen
    seconds: float  # from the first byte sent to the answer's head
    head: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def stream_upload(
    port: int,
    target: str,
    content_type: str,
    total_bytes: int,
    chunk_bytes: int = 64 * 1024,
    declare_length: bool = False,
    prefix: bytes = b"",
    suffix: bytes = b"",
    timeout_s: float = 30.0,
) -> StreamResult:
    """POST ``prefix + zeros + suffix`` (``total_bytes`` in all) from a generator, chunked or
    with a declared Content-Length, and stop sending as soon as the server answers.

    The body is never held in memory: one chunk is reused. ``sent_bytes`` shows how much the
    server took before it answered.
    """
    filler = total_bytes - len(prefix) - len(suffix)
    framing = (
        f"Content-Length: {total_bytes}\r\n" if declare_length else "Transfer-Encoding: chunked\r\n"
    )
    head = (
        f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
        f"{framing}\r\n"
    ).encode()

    def pieces():
        yield prefix
        zeros = b"\x00" * chunk_bytes
        left = filler
        while left > 0:
            piece = zeros if left >= chunk_bytes else zeros[:left]
            left -= len(piece)
            yield piece
        yield suffix

    sent = 0
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(head)
        try:
            for piece in pieces():
                if select.select([sock], [], [], 0)[0]:
                    break  # the answer (or a close) is already waiting
                if not piece:
                    continue
                frame = piece if declare_length else b"%x\r\n%s\r\n" % (len(piece), piece)
                sock.sendall(frame)
                sent += len(piece)
            else:
                if not declare_length:
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending
        return _read_answer(sock, sent, started)


def _read_answer(sock: socket.socket, sent: int, started: float) -> StreamResult:
    data = b""
    seconds = None
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if seconds is None:
                seconds = time.perf_counter() - started
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    seconds = seconds if seconds is not None else time.perf_counter() - started
    if not data.startswith(b"HTTP/1.1 "):
        return StreamResult(None, sent, seconds, data)
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    try:
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return StreamResult(int(lines[0].split()[1]), sent, seconds, head, headers, rest[:length])


async def async_request(
    port: int,
    method: str,
    target: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    timeout_s: float = 30.0,
) -> Answer:
    """One request on its own connection (``Connection: close``), like an independent client.

    Raises ``TimeoutError`` after ``timeout_s`` and ``OSError`` when the connection is refused
    or reset before an answer.
    """
    import asyncio

    started = time.perf_counter()
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close",
             f"Content-Length: {len(body)}"]  # fmt: skip
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
    head, separator, payload = data.partition(b"\r\n\r\n")
    if not separator or not head.startswith(b"HTTP/1.1 "):
        raise ConnectionResetError(f"no HTTP answer, got {data[:80]!r}")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    answer_headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        answer_headers[name.strip().lower()] = value.strip()
    return Answer(
        int(status_line.split()[1]), answer_headers, payload, time.perf_counter() - started
    )
