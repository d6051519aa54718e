"""uvicorn's h11 protocol with ``TCP_NODELAY`` on every connection.

asyncio turns Nagle's algorithm off only for sockets whose ``proto`` is ``IPPROTO_TCP``. With
``--workers N`` uvicorn binds the shared listening socket as ``socket(AF_INET, SOCK_STREAM)``
(``proto`` 0), so accepted connections kept Nagle on: a response written in two pieces waited
for the client's delayed ACK, and c=1 latency went from 19 to 64 ms with two workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


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
