"""The MLLP listener wired to the intake: the only place transport meets meaning.

The listener (adapters.mllp) frames; the handler here hands each message to ``Intake`` in one of
a few threads of its own (the database work is synchronous) and frames its ACK. Few
(``mllp_workers``, 2): a second thread applies a message while the first waits for the database,
but every further one mostly waits for the interpreter lock, and the switching costs CPU
(bench/bench_intake.py on 2 cores: 2 threads applied about a fifth more discharges a second than
the 6 of asyncio's default pool). More cores: more listener processes (``mllp --processes``).
When the database cannot take the message at all, no ACK is sent and the connection is closed,
so the sender retries.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from concurrent.futures import ThreadPoolExecutor

from adapters.mllp import Handler, ListenerConfig, MLLPListener, Peer, server_context
from fhir_gateway.errors import Unavailable
from fhir_gateway.observability.tracing import SpanKind, span
from fhir_gateway.services.ingest import Intake
from fhir_gateway.settings import Settings

__all__ = ["listener_config", "make_handler", "make_listener", "start_listener"]

log = logging.getLogger("fhir_gateway.mllp")


def listener_config(
    settings: Settings, *, host: str | None = None, port: int | None = None
) -> ListenerConfig:
    context = None
    if settings.mllp_tls_cert:
        context = server_context(
            settings.mllp_tls_cert, settings.mllp_tls_key, client_ca=settings.mllp_tls_client_ca
        )
    return ListenerConfig(
        host=host or settings.mllp_host,
        port=settings.mllp_port if port is None else port,
        ssl=context,
        idle_timeout=settings.mllp_idle_timeout,
        frame_timeout=settings.mllp_frame_timeout,
        max_frame=settings.mllp_max_frame_bytes,
        max_connections=settings.mllp_max_connections,
        max_junk=settings.mllp_max_junk_bytes,
        reuse_port=True,  # several server processes may share the port
    )


def make_handler(intake: Intake, workers: int = 2) -> Handler:
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mllp-apply")

    async def handle(message: bytes, peer: Peer) -> bytes | None:
        with span(
            "mllp receive", kind=SpanKind.SERVER, attributes={"network.transport": "tcp"}
        ):  # receive → ACK
            try:
                receive = functools.partial(
                    intake.receive_hl7, message, channel="mllp", peer=str(peer)
                )
                # in the caller's context, as asyncio.to_thread does: the trace continues there
                context = contextvars.copy_context()
                answer = await asyncio.get_running_loop().run_in_executor(
                    pool, context.run, receive
                )
            except Unavailable as exc:
                log.warning("MLLP %s: message not stored (%s); no ACK", peer, exc.message)
                return None
            return answer.body

    return handle


def make_listener(
    intake: Intake, settings: Settings, *, host: str | None = None, port: int | None = None
) -> MLLPListener:
    handler = make_handler(intake, settings.mllp_workers)
    return MLLPListener(handler, listener_config(settings, host=host, port=port))


async def start_listener(
    intake: Intake, settings: Settings, *, host: str | None = None, port: int | None = None
) -> MLLPListener:
    """Apply what a crash left half-done, then listen."""
    recovered = await asyncio.to_thread(intake.recover)
    if recovered:
        log.info("intake: %d messages left received by an earlier run applied", recovered)
    listener = make_listener(intake, settings, host=host, port=port)
    await listener.start()
    return listener
