"""An asyncio MLLP listener. It frames and unframes; what a message means is the handler's business.

    async def handler(message: bytes, peer: Peer) -> bytes | None: ...   # None: close, no answer
    listener = MLLPListener(handler, ListenerConfig(port=2575, ssl=context))
    await listener.start()

Each connection is served in order (original-mode ACKs: one answer per frame before the next is
read); connections run concurrently, up to ``max_connections``. Every refusal (over the cap,
idle, a frame that never ends, a frame too large, more junk than ``max_junk``, a failing handler)
is one log line naming the peer, then the connection is closed. Repeated lines of one kind are
held back (at most one per ``log_interval`` seconds, the next one says how many were held), so a
flood of bad connections cannot flood the log.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ._framing import FrameReader, FrameTooLarge, frame

__all__ = ["Peer", "Handler", "ListenerConfig", "LogLimiter", "MLLPListener"]

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
    max_connections: int = 100  # open at once; more are closed as they come
    max_junk: int = 64 * 1024  # bytes outside any frame over a connection's life
    log_interval: float = 10.0  # at most one log line of a kind per interval


class LogLimiter:
    """One log line per kind of event per ``interval`` seconds; the lines held back in between
    are counted and told by the next line of that kind. ``clock`` is a seam for tests."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def __call__(self, level: int, kind: str, message: str, *args: object) -> bool:
        """Log (True) or hold back (False) one line."""
        now = self.clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._held[kind] = self._held.get(kind, 0) + 1
            return False
        self._last[kind] = now
        held = self._held.pop(kind, 0)
        if held:
            message += " (%d more like this held back)"
            args = (*args, held)
        log.log(level, message, *args)
        return True


class MLLPListener:
    def __init__(self, handler: Handler, config: ListenerConfig | None = None) -> None:
        self.handler = handler
        self.config = config or ListenerConfig()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self.log = LogLimiter(self.config.log_interval)

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
        limit = self.config.max_connections
        if len(self._connections) >= limit:
            self.log(
                logging.WARNING,
                "cap",
                "MLLP %s: refused: %d connections open (limit %d, "
                "max_connections); connection closed",
                peer,
                len(self._connections),
                limit,
            )
            writer.close()
            return
        self._connections.add(writer)
        try:
            await _Connection(self, reader, writer, peer).run()
        except (ConnectionError, ssl_module.SSLError) as exc:
            self.log(
                logging.INFO, "lost", "MLLP %s: connection lost (%s)", peer, exc.__class__.__name__
            )
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
        self.log = listener.log
        self.handler = listener.handler
        self.reader = reader
        self.writer = writer
        self.peer = peer
        self.frames = FrameReader(self.cfg.max_frame)
        self.frame_started: float | None = None
        self.junk_told = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await self._read(loop)
            if data is None:
                return
            try:
                messages = self.frames.feed(data)
            except FrameTooLarge as exc:
                self.log(
                    logging.WARNING,
                    "large",
                    "MLLP %s: refused: %s; connection closed",
                    self.peer,
                    exc,
                )
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
                self.log(
                    logging.WARNING,
                    "slow",
                    "MLLP %s: refused: frame not ended within %ss (%d bytes); connection closed",
                    self.peer,
                    self.cfg.frame_timeout,
                    self.frames.buffered,
                )
            else:
                self.log(
                    logging.INFO,
                    "idle",
                    "MLLP %s: idle for %ss; connection closed",
                    self.peer,
                    self.cfg.idle_timeout,
                )
            return None
        if not data:
            if self.frames.in_frame:
                self.log(
                    logging.WARNING,
                    "cut",
                    "MLLP %s: connection closed inside a frame (%d bytes dropped)",
                    self.peer,
                    self.frames.buffered,
                )
            return None
        return data

    def _junk(self) -> bool:
        """Junk counts over the connection's life: told once when first seen, and past
        ``max_junk`` the connection is closed with one line."""
        junk = self.frames.discarded
        if junk > self.cfg.max_junk:
            self.log(
                logging.WARNING,
                "junk",
                "MLLP %s: refused: %d bytes outside any frame (limit %d, "
                "max_junk); connection closed",
                self.peer,
                junk,
                self.cfg.max_junk,
            )
            return True
        if junk and not self.junk_told:
            self.junk_told = True
            self.log(
                logging.WARNING,
                "junk-seen",
                "MLLP %s: %d bytes outside any frame discarded",
                self.peer,
                junk,
            )
        return False

    async def _answer(self, message: bytes) -> bool:
        reply = await self.handler(message, self.peer)
        if reply is None:
            self.log(
                logging.WARNING,
                "unanswered",
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
