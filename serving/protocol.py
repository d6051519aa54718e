"""uvicorn's httptools protocol with ``TCP_NODELAY``, read deadlines and a request-head limit.

asyncio turns Nagle's algorithm off only for sockets whose ``proto`` is ``IPPROTO_TCP``. With
``--workers N`` uvicorn binds the shared listening socket as ``socket(AF_INET, SOCK_STREAM)``
(``proto`` 0), so accepted connections kept Nagle on: a response written in two pieces waited
for the client's delayed ACK, and c=1 latency went from 19 to 64 ms with two workers.

httptools (llhttp, in C) parses requests instead of h11 (pure Python): 0.15-0.2 ms less per
request at c=1 (docs/BENCHMARKS.md). uvicorn applies its head-size limit through h11 only,
so :class:`GuardedProtocol` keeps one itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger("serving.protocol")

HEAD, BODY = "head", "body"  # what a connection is waiting for from its client


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Switch Nagle's algorithm off on a TCP transport's socket (nothing for others)."""
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    with contextlib.suppress(OSError):  # a socket refusing the option is served as it is
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass(frozen=True)
class ReadLimits:
    """How long a client may take to send a request head and a body, and how large a head
    may grow before it is complete."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    max_head_bytes: int = 16384

    def __post_init__(self) -> None:
        if self.header_timeout_s <= 0 or self.body_timeout_s <= 0:
            raise ValueError(
                f"read deadlines must be positive, got header_timeout_s={self.header_timeout_s}, "
                f"body_timeout_s={self.body_timeout_s}"
            )
        if self.max_head_bytes < 1:
            raise ValueError(f"max_head_bytes must be at least 1, got {self.max_head_bytes}")


class GuardedProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with ``TCP_NODELAY``, that closes connections whose client is
    too slow to send and answers 400 to a request head that grows too large.

    A slow-header client never reaches the app, and uvicorn's keep-alive timer stops at the
    first byte of a request, so this is done per connection: a timer armed when the
    connection opens and after every answer closes the transport unless the request head is
    complete within ``header_timeout_s``; a second timer closes it unless the body is
    complete within ``body_timeout_s`` of the head. No timer runs while a request read is
    being answered (a pipelined request's deadline starts at the answer before it).
    A request cut off mid-body reaches the app as a disconnect. Bytes received while a head
    is incomplete count against ``max_head_bytes`` (as h11's incomplete-event limit does).
    Build it with :func:`guarded_protocol` (uvicorn calls the factory with its own arguments).
    """

    def __init__(self, *args: Any, limits: ReadLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._receiving = HEAD  # what the parser reads now, or reads next
        self._unanswered = 0  # requests read whose answer is not complete
        self._head_bytes = 0
        self._read_timer: asyncio.TimerHandle | None = None
        self._timed: str | None = None  # what the running timer waits for

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)
        self._watch_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._receiving == HEAD:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._receiving == HEAD and self._head_bytes > self.limits.max_head_bytes:
            if not self.transport.is_closing():
                logger.debug("closing %s: request head over the limit", self.client)
                self.send_400_response("Request head too large.")
            return
        self._watch_reading()

    # parser callbacks (llhttp calls them from inside data_received)
    def on_headers_complete(self) -> None:
        self._receiving, self._head_bytes = BODY, 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._receiving = HEAD
        if self.cycle is not None and not self.cycle.response_complete:
            self._unanswered += 1
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._unanswered = max(0, self._unanswered - 1)
        super().on_response_complete()
        self._watch_reading()

    def _watch_reading(self) -> None:
        """Arm, keep or stop the timer for what the client still has to send."""
        if self.transport is None or self.transport.is_closing():
            self._stop_timer()
            return
        # nothing is timed while the app answers: the next head's deadline starts at the answer
        waiting_for = None if self._unanswered else self._receiving
        if waiting_for == self._timed:
            return
        self._stop_timer()
        if waiting_for is not None:
            limits = self.limits
            seconds = limits.header_timeout_s if waiting_for == HEAD else limits.body_timeout_s
            self._timed = waiting_for
            self._read_timer = self.loop.call_later(seconds, self._too_slow, waiting_for)

    def _stop_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
        self._read_timer, self._timed = None, None

    def _too_slow(self, waiting_for: str) -> None:
        self._read_timer, self._timed = None, None
        if not self.transport.is_closing():
            logger.debug("closing %s: request %s not complete in time", self.client, waiting_for)
            self.transport.close()


def guarded_protocol(limits: ReadLimits) -> Callable[..., GuardedProtocol]:
    """The protocol factory for ``uvicorn.run(http=...)`` (picklable, for ``--workers``)."""
    return functools.partial(GuardedProtocol, limits=limits)
