"""Log lines an operator can search and a privacy officer can read: optionally JSON, each with a
correlation id (the request id, MSH-10 or the outbox id) and the trace ids, and no PHI.

The gateway's own messages name ids, never patients; uvicorn's access log carries query strings
(``Patient?name=…``), so its path is cut at ``?`` here, whatever the format.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

from fhir_gateway.security.logs import redact_secrets_in_logs

__all__ = ["JsonFormatter", "QueryStringFilter", "correlated", "correlation_id", "setup_logging"]

_CORRELATION: ContextVar[str | None] = ContextVar("fhir_gateway_correlation", default=None)
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def correlation_id() -> str | None:
    return _CORRELATION.get()


@contextmanager
def correlated(value: str | None) -> Iterator[None]:
    """Lines logged inside carry ``value`` as their correlation id (e.g. ``msh10:…``)."""
    token = _CORRELATION.set(value)
    try:
        yield
    finally:
        _CORRELATION.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, correlation_id, trace_id, span_id."""

    def format(self, record: logging.LogRecord) -> str:
        from fhir_gateway.observability.tracing import current_ids

        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        correlation = correlation_id()
        if correlation:
            line["correlation_id"] = correlation
        ids = current_ids()
        if ids:
            line["trace_id"], line["span_id"] = ids
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


class QueryStringFilter(logging.Filter):
    """uvicorn's access line without the query string (search parameters are PHI)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            isinstance(args, tuple)
            and len(args) >= 3
            and isinstance(args[2], str)
            and "?" in args[2]
        ):
            record.args = (*args[:2], args[2].partition("?")[0], *args[3:])
        return True


def _handlers() -> Iterator[logging.Handler]:
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access"):
        yield from logging.getLogger(name).handlers


def setup_logging(level: str, log_format: str = "text") -> None:
    """Level and format for every handler (ours and uvicorn's), secrets masked, query strings cut.
    Idempotent: the server, the MLLP listener and the worker each call it at start."""
    logging.basicConfig(level=level.upper(), format=_TEXT_FORMAT)
    logging.getLogger().setLevel(level.upper())
    redact_secrets_in_logs()
    for chatty in ("httpx", "httpcore"):  # they log every URL, query string included
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, QueryStringFilter) for f in access.filters):
        access.addFilter(QueryStringFilter())
    if log_format == "json":
        formatter = JsonFormatter()
        for handler in _handlers():
            handler.setFormatter(formatter)
