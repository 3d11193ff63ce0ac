"""The HTTP protocol `serve` runs under uvicorn: uvicorn's own, with TCP_NODELAY on each connection.

uvicorn's multi-process mode (``--workers N``, N > 1) binds its listener with ``proto`` 0; the
accepted sockets inherit it and asyncio sets TCP_NODELAY only when ``proto`` is IPPROTO_TCP. Nagle's
algorithm then holds the last segment of each keep-alive response until the client's delayed ACK:
about 40 ms on every request after a connection's first (Kludex/uvicorn#3149).
"""

from __future__ import annotations

import socket
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

__all__ = ["NoDelayHTTP"]


class NoDelayHTTP(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    def connection_made(self, transport: Any) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
