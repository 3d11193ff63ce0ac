"""What operators see: Prometheus metrics, health answers, OpenTelemetry traces and log lines
(``metrics``, ``health``, ``tracing``, ``logs``; ``http`` is the ASGI layer that serves them).

``install_observability`` is the one call the composition root makes.
"""

from __future__ import annotations

import atexit
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastapi import FastAPI
    from fastapi.telemetry import TelemetryConfig

    from fhir_gateway.observability.health import Heartbeat
    from fhir_gateway.settings import Settings
    from fhir_gateway.store.db import Database

__all__ = ["FASTAPI_TELEMETRY", "install_observability", "instrument_database", "observe_process"]

# FastAPI's own OpenTelemetry (0.16x) records url.query on its spans and request-validation input
# values in its log records: both PHI here. Off; ``observability.http`` traces by route template.
FASTAPI_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}


def instrument_database(database: Database) -> None:
    """Pool gauge and database spans on a process's engine (idempotent)."""
    from fhir_gateway.observability.metrics import watch_pool
    from fhir_gateway.observability.tracing import trace_database

    watch_pool(database.engine)
    trace_database(database.engine)


def observe_process(
    database: Database,
    settings: Settings,
    *,
    health_port: int | None = None,
    heartbeat: Heartbeat | None = None,
) -> Callable[[], None]:
    """For a process that serves no HTTP (``worker``, ``mllp``): log format, traces, database
    instruments, and with ``health_port`` the health answers and ``/metrics`` on that port.
    Returns the function that stops the port."""
    from fhir_gateway.observability.health import serve_health
    from fhir_gateway.observability.logs import setup_logging
    from fhir_gateway.observability.tracing import configure_tracing

    setup_logging(settings.log_level, settings.log_format)
    configure_tracing()
    instrument_database(database)
    if health_port is None:
        return lambda: None
    server = serve_health(
        database,
        health_port,
        host=settings.metrics_host,
        heartbeat=heartbeat,
        metrics=settings.metrics_enabled,
    )
    return server.shutdown


def install_observability(app: FastAPI, settings: Settings) -> None:
    """Logs, traces, metrics and health for the HTTP app: the outermost middleware, and
    ``/metrics`` for admins unless it has its own port."""
    from fhir_gateway.observability.http import ObservabilityMiddleware, metrics_router
    from fhir_gateway.observability.logs import setup_logging
    from fhir_gateway.observability.metrics import multiprocess_dir
    from fhir_gateway.observability.tracing import configure_tracing

    setup_logging(settings.log_level, settings.log_format)
    configure_tracing()
    database = app.state.database
    instrument_database(database)
    if settings.metrics_enabled and settings.metrics_port is None:
        app.include_router(metrics_router())
    if multiprocess_dir():
        from prometheus_client import multiprocess

        atexit.register(multiprocess.mark_process_dead, os.getpid())  # its live gauges go with it
    app.add_middleware(ObservabilityMiddleware, database=database)
