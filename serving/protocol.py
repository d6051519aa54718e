"""uvicorn's h11 protocol with ``TCP_NODELAY`` on every connection, and read deadlines.

asyncio turns Nagle's algorithm off only for sockets whose ``proto`` is ``IPPROTO_TCP``. With
``--workers N`` uvicorn binds the shared listening socket as ``socket(AF_INET, SOCK_STREAM)``
(``proto`` 0), so accepted connections kept Nagle on: a response written in two pieces waited
for the client's delayed ACK, and c=1 latency went from 19 to 64 ms with two workers.
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

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger("serving.protocol")


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Switch Nagle's algorithm off on a TCP transport's socket (nothing for others)."""
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    with contextlib.suppress(OSError):  # a socket refusing the option is served as it is
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    """``H11Protocol`` that sets ``TCP_NODELAY`` when a connection is made."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)


@dataclass(frozen=True)
class ReadDeadlines:
    """How long a client may take to send a request head and a request body."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.header_timeout_s <= 0 or self.body_timeout_s <= 0:
            raise ValueError(
                f"read deadlines must be positive, got header_timeout_s={self.header_timeout_s}, "
                f"body_timeout_s={self.body_timeout_s}"
            )


class GuardedH11Protocol(NoDelayH11Protocol):
    """``NoDelayH11Protocol`` that closes connections whose client is too slow to send.

    A slow-header client never reaches the app, and uvicorn's keep-alive timer stops at
    the first byte of a request, so this is done per connection: a timer armed when the
    connection opens and after every answer closes the transport unless the request head
    (h11: the client left ``IDLE``) is complete within ``header_timeout_s``; a second timer
    closes it unless the body (h11: the client is ``DONE``) is complete within
    ``body_timeout_s`` of the head. A request cut off mid-body reaches the app as a disconnect.
    Build it with :func:`guarded_protocol` (uvicorn calls the factory with its own arguments).
    """

    def __init__(self, *args: Any, deadlines: ReadDeadlines, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadlines = deadlines
        self._read_timer: asyncio.TimerHandle | None = None
        self._timed_phase: str | None = None  # "head" or "body" while a timer runs

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_reading()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_reading()

    def _watch_reading(self) -> None:
        """Arm, keep or stop the timer for what the client still has to send."""
        if self.transport is None or self.transport.is_closing():
            self._stop_timer()
            return
        state = self.conn.their_state
        phase = "head" if state is h11.IDLE else "body" if state is h11.SEND_BODY else None
        if phase == self._timed_phase:
            return
        self._stop_timer()
        if phase is not None:
            deadlines = self.deadlines
            seconds = deadlines.header_timeout_s if phase == "head" else deadlines.body_timeout_s
            self._timed_phase = phase
            self._read_timer = self.loop.call_later(seconds, self._too_slow, phase)

    def _stop_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
        self._read_timer, self._timed_phase = None, None

    def _too_slow(self, phase: str) -> None:
        self._read_timer, self._timed_phase = None, None
        if not self.transport.is_closing():
            logger.debug("closing %s: request %s not complete in time", self.client, phase)
            self.transport.close()


def guarded_protocol(deadlines: ReadDeadlines) -> Callable[..., GuardedH11Protocol]:
    """The protocol factory for ``uvicorn.run(http=...)`` (picklable, for ``--workers``)."""
    return functools.partial(GuardedH11Protocol, deadlines=deadlines)
