"""Health for load balancers and orchestrators: ``/health/live`` (the process answers) and
``/health/ready`` (the database answers and its schema is at the migrations' head; for a delivery
worker, also that its loop has beaten recently).

The same two answers are served in front of the FastAPI app (``observability.http``) and, for the processes that
serve no HTTP (``fhir-gateway worker``, ``fhir-gateway mllp``), by a tiny threaded HTTP server on
``--health-port`` (``serve_health``). Neither needs a token and neither touches more than one
short query, so both answer in milliseconds.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from fhir_gateway.store.db import Database
from fhir_gateway.store.migrate import alembic_config

__all__ = [
    "Heartbeat",
    "Readiness",
    "check_ready",
    "health_answer",
    "serve_health",
    "LIVE",
    "READY",
]

log = logging.getLogger("fhir_gateway.health")
LIVE = "/health/live"
READY = "/health/ready"


@dataclass(slots=True)
class Heartbeat:
    """A loop's sign of life: ``beat()`` each round; stale after ``max_age`` seconds."""

    max_age: float
    _last: float = field(default_factory=time.monotonic)

    def beat(self) -> None:
        self._last = time.monotonic()

    def age(self) -> float:
        return time.monotonic() - self._last

    def fresh(self) -> bool:
        return self.age() <= self.max_age


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    checks: dict[str, str]

    def body(self) -> dict[str, Any]:
        return {"status": "ready" if self.ready else "not ready", "checks": self.checks}


@lru_cache(maxsize=1)
def _script_heads() -> frozenset[str]:
    """The revisions the shipped migrations end at (read once: the scripts do not change)."""
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def _database_check(database: Database) -> tuple[bool, str, str]:
    """(reachable, database detail, migrations detail)."""
    try:
        with database.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            try:
                current = frozenset(
                    conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
                )
            except SQLAlchemyError:  # no version table: never migrated
                current = frozenset()
    except SQLAlchemyError as exc:
        return False, f"unreachable ({exc.__class__.__name__})", "unknown"
    heads = _script_heads()
    if current == heads:
        return True, "ok", "at head"
    shown = ", ".join(sorted(current)) or "none"
    return True, "ok", f"at {shown}, head is {', '.join(sorted(heads))}"


def check_ready(database: Database, heartbeat: Heartbeat | None = None) -> Readiness:
    reachable, db_detail, migrations = _database_check(database)
    checks = {"database": db_detail, "migrations": migrations}
    ready = reachable and migrations == "at head"
    if heartbeat is not None:
        age = heartbeat.age()
        checks["heartbeat"] = f"{age:.1f} s ago" + (
            "" if heartbeat.fresh() else f" (stale, > {heartbeat.max_age:g} s)"
        )
        ready = ready and heartbeat.fresh()
    return Readiness(ready, checks)


def health_answer(
    path: str, database: Database, heartbeat: Heartbeat | None = None
) -> tuple[int, dict[str, Any]] | None:
    """(status, JSON body) for a health path, None for any other path."""
    if path == LIVE:
        return 200, {"status": "live"}
    if path == READY:
        result = check_ready(database, heartbeat)
        return (200 if result.ready else 503), result.body()
    return None


def serve_health(
    database: Database,
    port: int,
    *,
    host: str = "0.0.0.0",
    heartbeat: Heartbeat | None = None,
    metrics: bool = False,
) -> ThreadingHTTPServer:
    """The two health answers (and with ``metrics``, ``/metrics``) on their own port, in a daemon
    thread; ``shutdown()`` stops it. Nothing here needs a token: bind it where only probes and
    the Prometheus scraper reach."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.partition("?")[0]
            if metrics and path == "/metrics":
                from fhir_gateway.observability.metrics import CONTENT_TYPE_LATEST, render

                self._send(200, CONTENT_TYPE_LATEST, render(database))
                return
            answer = health_answer(path, database, heartbeat)
            self._answer(*(answer or (404, {"status": "not found", "paths": [LIVE, READY]})))

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            self._send(status, "application/json", orjson.dumps(body))

        def _send(self, status: int, content_type: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: quiet
            return

    _script_heads()  # read here, not in the first probe's thread while the process imports
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    log.info("health on http://%s:%d%s and %s", host, server.server_address[1], LIVE, READY)
    return server
