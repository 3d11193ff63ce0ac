"""A time budget for the statements of one request, and a way to stop them from another thread.

PostgreSQL: ``statement_timeout``, set for the transaction, makes the server stop a statement
past the budget, even when the process that sent it has died; ``cancel()`` (the client left)
sends the server a cancel request. SQLite: a progress handler, called every few thousand
virtual-machine steps, aborts the statement past the deadline or once cancelled. Either way the
request ends with ``TooCostly`` naming the limit, a 400: retrying the same query cannot help.
Between statements ``check()`` enforces the deadline, so the budget bounds the whole request.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from fhir_gateway.errors import TooCostly

__all__ = ["Budget"]

_PROGRESS_STEPS = 10_000  # SQLite VM steps between two looks at the clock (~0.1 ms)
_QUERY_CANCELED = "57014"  # PostgreSQL SQLSTATE of statement_timeout and of a cancel request
_RESTORE = text("SELECT set_config('statement_timeout', :ms, true)")


class Budget:
    """``seconds`` of database time for one request; ``limit`` is the setting that gives it."""

    def __init__(self, seconds: float, *, limit: str = "search_timeout") -> None:
        self.seconds = seconds
        self.limit = limit
        self.deadline = time.monotonic() + seconds
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._running: Any = None  # the PostgreSQL driver connection while a statement may run

    def cancel(self) -> None:
        """Stop the work (from any thread): the client has gone. Blocks for a round trip on
        PostgreSQL; call it from a worker thread."""
        self._cancelled.set()
        with self._lock:
            running = self._running
        if running is not None:
            running.cancel_safe(timeout=5.0)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check(self) -> None:
        """Between statements: refuse to go on past the deadline or once cancelled."""
        if self.cancelled or time.monotonic() > self.deadline:
            raise self._error()

    @contextmanager
    def applied(
        self, session: Session | Connection, *, local: Mapping[str, str] | None = None
    ) -> Iterator[None]:
        """Statements of ``session`` (or of a bare connection) inside the block stop at the
        deadline or on ``cancel()``.

        ``local``: more PostgreSQL settings for the rest of the transaction, set in the same
        round trip as the timeout."""
        self.check()
        conn = session if isinstance(session, Connection) else session.connection()
        driver: Any = conn.connection.driver_connection  # sqlite3 or psycopg connection
        postgres = conn.dialect.name == "postgresql"
        readonly = bool(conn.get_execution_options().get("readonly"))
        previous = None
        if postgres:
            ms = str(max(1, int((self.deadline - time.monotonic()) * 1000)))
            previous = conn.execute(_settings_query(local or {}), {"ms": ms}).scalar_one()
            with self._lock:
                self._running = driver
        else:
            driver.set_progress_handler(self._progress, _PROGRESS_STEPS)
        try:
            yield
            if postgres and not readonly:  # the transaction goes on (a batch): without the budget
                conn.execute(_RESTORE, {"ms": previous})
        except DBAPIError as exc:
            if self._stopped(exc):
                raise self._error() from exc
            raise
        finally:
            if postgres:
                with self._lock:
                    self._running = None
            else:
                driver.set_progress_handler(None, 0)

    @contextmanager
    def on_sqlite(self, driver: sqlite3.Connection) -> Iterator[None]:
        """``applied`` for statements run on the SQLite driver's own connection."""
        self.check()
        driver.set_progress_handler(self._progress, _PROGRESS_STEPS)
        try:
            yield
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                raise self._error() from exc
            raise
        finally:
            driver.set_progress_handler(None, 0)

    def _progress(self) -> int:
        return 1 if self.cancelled or time.monotonic() > self.deadline else 0

    def _stopped(self, exc: DBAPIError) -> bool:
        orig = exc.orig
        if getattr(orig, "sqlstate", None) == _QUERY_CANCELED:
            return True
        return "interrupted" in str(orig)  # sqlite3: the progress handler aborted it

    def _error(self) -> TooCostly:
        if self.cancelled:
            return TooCostly("The query was stopped: the client closed the connection")
        return TooCostly(
            f"The query ran past its time budget of {self.seconds:g} s (limit {self.limit})"
        )


def _settings_query(local: Mapping[str, str]) -> Any:
    """The current statement_timeout, then the new one and ``local``, for this transaction."""
    extra = "".join(f", set_config('{name}', '{value}', true)" for name, value in local.items())
    return text(
        "SELECT current_setting('statement_timeout'), "
        f"set_config('statement_timeout', :ms, true){extra}"
    )
