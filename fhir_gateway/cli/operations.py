"""What `serve` sets up for operators before uvicorn starts: one metrics folder its worker
processes share, and `/metrics` on its own port when FHIR_GATEWAY_METRICS_PORT is set."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from fhir_gateway.settings import Settings

__all__ = ["share_metrics_between", "serve_metrics_port"]

_MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"


def share_metrics_between(workers: int) -> Callable[[], None]:
    """With several server processes, a fresh ``PROMETHEUS_MULTIPROC_DIR`` they all write to, so
    any one of them answers ``/metrics`` for all (unless the operator set one: then theirs, which
    they empty between runs). Returns the clean-up."""
    if workers <= 1 or os.environ.get(_MULTIPROC):
        return lambda: None
    folder = tempfile.mkdtemp(prefix="fhir-gateway-metrics-")
    os.environ[_MULTIPROC] = folder
    return lambda: shutil.rmtree(folder, ignore_errors=True)


def serve_metrics_port(settings: Settings) -> Callable[[], None]:
    """``/metrics`` (and the health answers) on FHIR_GATEWAY_METRICS_PORT, from this supervising
    process; returns the function that stops it."""
    if settings.metrics_port is None or not settings.metrics_enabled:
        return lambda: None
    from fhir_gateway.observability.health import serve_health
    from fhir_gateway.store.db import Database

    database = Database(settings.database_url, pool_size=2)
    server = serve_health(database, settings.metrics_port, host=settings.metrics_host, metrics=True)
    typer.echo(f"  metrics: http://{settings.metrics_host}:{settings.metrics_port}/metrics")

    def stop() -> None:
        server.shutdown()
        database.dispose()

    return stop
