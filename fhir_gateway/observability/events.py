"""The hooks the intake and the delivery worker call around one message or one delivery: a span,
the correlation id of its log lines, and its metrics, in one place so the call sites stay one line.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Protocol, TypeVar

from opentelemetry.trace import Span, SpanKind

from fhir_gateway.observability.logs import correlated
from fhir_gateway.observability.metrics import record_ack, record_delivery, record_message
from fhir_gateway.observability.tracing import span

__all__ = ["MessageSeen", "DeliverySeen", "observed_message", "observed_delivery"]


class _Answer(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def code(self) -> str: ...


_A = TypeVar("_A", bound=_Answer)


class MessageSeen:
    def __init__(self, channel: str, current: Span, stack: ExitStack) -> None:
        self.channel = channel
        self.span = current
        self._stack = stack
        self._started = time.perf_counter()
        self.ident: Any = None

    def identified(self, ident: Any) -> Any:
        """The message is identified: its MSH-10 (or MessageHeader.id) correlates what follows."""
        self.ident = ident
        if ident.control_id:
            self._stack.enter_context(correlated(f"msh10:{str(ident.control_id)[:64]}"))
        self.span.set_attribute("messaging.message.id", str(ident.control_id or "")[:64])
        self.span.set_attribute("fhir_gateway.event", str(ident.event or "")[:32])
        return ident

    def answered(self, answer: _A) -> _A:
        ident = self.ident
        registered = type(getattr(ident, "error", None)).__name__ != "UnknownSender"
        record_message(
            self.channel,
            getattr(ident, "sender", None),
            getattr(ident, "event", None),
            answer.status,
            registered=registered,
        )
        record_ack(self.channel, answer.code, time.perf_counter() - self._started)
        self.span.set_attribute("fhir_gateway.outcome", answer.status)
        self.span.set_attribute("fhir_gateway.ack_code", answer.code)
        return answer


@contextmanager
def observed_message(channel: str) -> Iterator[MessageSeen]:
    """Around one inbound message, from its bytes to its answer (after the commit)."""
    with ExitStack() as stack:
        current = stack.enter_context(
            span(
                f"intake {channel}",
                kind=SpanKind.CONSUMER,
                attributes={"fhir_gateway.channel": channel},
            )
        )
        seen = MessageSeen(channel, current, stack)
        try:
            yield seen
        except BaseException:
            record_message(
                channel,
                getattr(seen.ident, "sender", None),
                getattr(seen.ident, "event", None),
                "not-stored",
            )
            raise


class DeliverySeen:
    def __init__(self, channel: str, current: Span) -> None:
        self.channel = channel
        self.span = current
        self._started = time.perf_counter()
        self._sent: float | None = None

    def sent(self) -> None:
        """The receiver has answered (or failed to): the delivery's latency ends here."""
        self._sent = time.perf_counter() - self._started

    def done(self, outcome: str, http_status: int | None) -> None:
        self.span.set_attribute("fhir_gateway.outcome", outcome)
        if http_status is not None:
            self.span.set_attribute("http.response.status_code", http_status)
        record_delivery(
            self.channel,
            outcome,
            self._sent if self._sent is not None else time.perf_counter() - self._started,
        )


@contextmanager
def observed_delivery(outbox_id: int, channel: str) -> Iterator[DeliverySeen]:
    """Around one delivery attempt of an outbox row; the receiver gets this span's traceparent."""
    with (
        correlated(f"outbox:{outbox_id}"),
        span(
            f"outbox deliver {channel}",
            kind=SpanKind.CLIENT,
            attributes={"fhir_gateway.outbox_id": outbox_id, "fhir_gateway.channel": channel},
        ) as current,
    ):
        yield DeliverySeen(channel, current)
