"""`serve` turns Nagle's algorithm off on every connection, also under uvicorn's --workers N,
where the inherited listener would leave it on (about 40 ms added to each keep-alive request)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from fhir_gateway.workers.http import NoDelayHTTP


class _Transport(asyncio.Transport):
    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {
            "socket": self._sock,
            "peername": ("127.0.0.1", 1),
            "sockname": ("127.0.0.1", 2),
        }.get(name, default)


async def _app(scope: Any, receive: Any, send: Any) -> None:
    pass


async def _accepted_nodelay() -> tuple[int, int]:
    # A socket as uvicorn's multi-process listener hands it over: TCP, Nagle on.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()):
            accepted, _ = listener.accept()
            with accepted:
                accepted.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
                before = accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                config = Config(app=_app, http="h11")
                config.load()
                protocol = NoDelayHTTP(config=config, server_state=ServerState(), app_state={})
                protocol.connection_made(_Transport(accepted))
                return before, accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_serve_protocol_turns_nagle_off_on_each_connection() -> None:
    before, after = asyncio.run(_accepted_nodelay())
    assert before == 0
    assert after != 0
