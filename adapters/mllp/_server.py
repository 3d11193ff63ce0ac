"""An asyncio MLLP listener. It frames and unframes; what a message means is the handler's business.

    async def handler(message: bytes, peer: Peer) -> bytes | None: ...   # None: close, no answer
    listener = MLLPListener(handler, ListenerConfig(port=2575, ssl=context))
    await listener.start()

Each connection is served in order (original-mode ACKs: one answer per frame before the next is
read); connections run concurrently. Every refusal (idle, a frame that never ends, a frame too
large, junk, a failing handler) is one log line naming the peer, then the connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ._framing import FrameReader, FrameTooLarge, frame

__all__ = ["Peer", "Handler", "ListenerConfig", "MLLPListener"]

log = logging.getLogger("adapters.mllp")


@dataclass(frozen=True, slots=True)
class Peer:
    host: str
    port: int
    tls: bool = False
    client_subject: str | None = None  # the verified client certificate's subject, when asked for

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


Handler = Callable[[bytes, Peer], Awaitable[bytes | None]]


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    host: str = "127.0.0.1"
    port: int = 2575
    ssl: ssl_module.SSLContext | None = None
    idle_timeout: float = 300.0  # no byte at all for this long: close
    frame_timeout: float = 60.0  # a frame begun must end within this (defeats one-byte-a-second)
    max_frame: int = 10 * 1024 * 1024
    read_size: int = 64 * 1024
    reuse_port: bool = False  # several processes may share the port (Linux SO_REUSEPORT)


class MLLPListener:
    def __init__(self, handler: Handler, config: ListenerConfig | None = None) -> None:
        self.handler = handler
        self.config = config or ListenerConfig()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        """The bound port (useful when configured with port 0)."""
        assert self._server is not None, "listener not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        c = self.config
        self._server = await asyncio.start_server(
            self._serve,
            c.host,
            c.port,
            ssl=c.ssl,
            limit=c.read_size,
            reuse_port=c.reuse_port or None,
        )
        log.info("MLLP listening on %s:%s%s", c.host, self.port, " (TLS)" if c.ssl else "")

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections):
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        self._connections.add(writer)
        try:
            await _Connection(self, reader, writer, peer).run()
        except (ConnectionError, ssl_module.SSLError) as exc:
            log.info("MLLP %s: connection lost (%s)", peer, exc.__class__.__name__)
        except Exception:  # a failing handler must not take the listener down
            log.exception("MLLP %s: handler failed; connection closed", peer)
        finally:
            self._connections.discard(writer)
            writer.close()


class _Connection:
    def __init__(
        self,
        listener: MLLPListener,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: Peer,
    ) -> None:
        self.cfg = listener.config
        self.handler = listener.handler
        self.reader = reader
        self.writer = writer
        self.peer = peer
        self.frames = FrameReader(self.cfg.max_frame)
        self.frame_started: float | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await self._read(loop)
            if data is None:
                return
            try:
                messages = self.frames.feed(data)
            except FrameTooLarge as exc:
                log.warning("MLLP %s: refused: %s; connection closed", self.peer, exc)
                return
            if self._junk():
                return
            self.frame_started = (
                (self.frame_started or loop.time()) if self.frames.in_frame else None
            )
            for message in messages:
                if not await self._answer(message):
                    return

    async def _read(self, loop: asyncio.AbstractEventLoop) -> bytes | None:
        timeout = self.cfg.idle_timeout
        if self.frame_started is not None:
            timeout = min(timeout, self.frame_started + self.cfg.frame_timeout - loop.time())
        try:
            data = await asyncio.wait_for(self.reader.read(self.cfg.read_size), max(timeout, 0.0))
        except TimeoutError:
            if self.frame_started is not None:
                log.warning(
                    "MLLP %s: refused: frame not ended within %ss (%d bytes); connection closed",
                    self.peer,
                    self.cfg.frame_timeout,
                    self.frames.buffered,
                )
            else:
                log.info(
                    "MLLP %s: idle for %ss; connection closed", self.peer, self.cfg.idle_timeout
                )
            return None
        if not data:
            if self.frames.in_frame:
                log.warning(
                    "MLLP %s: connection closed inside a frame (%d bytes dropped)",
                    self.peer,
                    self.frames.buffered,
                )
            return None
        return data

    def _junk(self) -> bool:
        """Log bytes found outside any frame; close when there is more junk than a frame may hold."""
        if not self.frames.discarded:
            return False
        log.warning(
            "MLLP %s: %d bytes outside any frame discarded", self.peer, self.frames.discarded
        )
        too_much = self.frames.discarded > self.cfg.max_frame
        self.frames.discarded = 0
        if too_much:
            log.warning("MLLP %s: refused: junk stream; connection closed", self.peer)
        return too_much

    async def _answer(self, message: bytes) -> bool:
        reply = await self.handler(message, self.peer)
        if reply is None:
            log.warning(
                "MLLP %s: no answer for a message; connection closed so the sender retries",
                self.peer,
            )
            return False
        self.writer.write(frame(reply))
        await self.writer.drain()
        return True


def _peer(writer: asyncio.StreamWriter) -> Peer:
    address = writer.get_extra_info("peername") or ("?", 0)
    ssl_object = writer.get_extra_info("ssl_object")
    subject = None
    if ssl_object is not None:
        cert = ssl_object.getpeercert()
        if cert:
            subject = ",".join("=".join(pair) for rdn in cert.get("subject", ()) for pair in rdn)
    return Peer(str(address[0]), int(address[1]), ssl_object is not None, subject)
