"""The search-parameter registry follows the database: stored SearchParameters count once committed.

A write of a SearchParameter sets a new version in one row (and on PostgreSQL sends a NOTIFY) in its own
transaction, so a rollback leaves no trace. Every transaction of a process first makes sure the
process's registry (``search.registry.get_registry()``: the built-in definitions plus the stored
ones) is at that version: on SQLite by reading the version row (one primary-key read); on
PostgreSQL a listener thread marks the registry stale when a NOTIFY arrives, and the version row is
read only then (or while the listener is not connected). A process that starts loads the stored
definitions at its first transaction.
"""

from __future__ import annotations

import logging
import secrets
import threading
import weakref
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fhir_gateway.search.registry import get_registry
from fhir_gateway.store.tables import resources, search_parameter_state

__all__ = ["CHANGED", "CHANNEL", "RegistrySync", "changed", "stored_definitions"]

log = logging.getLogger(__name__)

CHANNEL = "fhir_gateway_search_parameters"
CHANGED = "search_parameters_changed"  # Session.info key
_LISTEN_TIMEOUT = 1.0  # seconds a listener waits for a NOTIFY before it checks whether to stop
_RECONNECT_DELAY = 5.0


def changed(session: Session) -> None:
    """Record, in the session's transaction, that the stored SearchParameters changed."""
    conn = session.connection()
    session.info[CHANGED] = True  # this process reloads right after the commit (no NOTIFY wait)
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    # A new random version, not a counter: equal versions mean equal sets even if the row was
    # ever emptied and written again.
    version = secrets.randbits(62) or 1
    stmt = insert(search_parameter_state).values(id=1, version=version)
    conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_={"version": version}))
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


def stored_definitions(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(resources.c.content).where(
            resources.c.res_type == "SearchParameter", resources.c.deleted.is_(False)
        )
    )
    return [row.content for row in rows]


# Built once: SQLite reads it at the start of every transaction, and building and keying a new
# statement each time cost more than the read.
_VERSION = select(search_parameter_state.c.version).where(search_parameter_state.c.id == 1)
_VERSION_SQL = f"SELECT version FROM {search_parameter_state.name} WHERE id = 1"


class RegistrySync:
    """Keeps this process's registry at the database's version of the stored SearchParameters."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._version: int | None = None  # loaded version; None: not loaded yet
        self._stale = threading.Event()
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._listener: threading.Thread | None = None

    def ensure_current(self, conn: Connection) -> None:
        """Called at the start of every transaction, on its connection."""
        if self._version is not None and self._listening.is_set() and not self._stale.is_set():
            return
        self._stale.clear()
        # no row: nothing was ever stored (or the table was emptied)
        version = conn.execute(_VERSION).scalar() or 0
        if version == self._version:
            return
        with self._lock:
            if version != self._version:
                get_registry().replace_stored(stored_definitions(conn))
                self._version = version
        if conn.dialect.name == "postgresql":
            self._start_listener()

    def loaded_is_current(self, cursor: Any) -> bool:
        """Whether the registry loaded is the database's, its version read on a DBAPI cursor (a
        statement on the driver's own connection). False: ``ensure_current`` is to load it."""
        if self._version is not None and self._listening.is_set() and not self._stale.is_set():
            return True
        row = cursor.execute(_VERSION_SQL).fetchone()
        return self._version is not None and ((row[0] if row else 0) or 0) == self._version

    def forget(self) -> None:
        """Load again at the next transaction (the tables were emptied behind the app's back)."""
        self._version = None
        self._stale.set()

    def mark_stale(self) -> None:
        """Read the version again at the next transaction (this process committed a change)."""
        self._stale.set()

    # -- PostgreSQL: LISTEN in a thread of its own --------------------------------------------

    def _start_listener(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
            # The thread holds the events and the engine, not this object: a Database dropped
            # without dispose() still stops its listener (and closes its connection) when collected.
            self._listener = threading.Thread(
                target=_listen,
                args=(self._engine, self._stop, self._stale, self._listening),
                name="search-parameter-listener",
                daemon=True,
            )
            weakref.finalize(self, self._stop.set)
            self._listener.start()

    def stop(self) -> None:
        """The listener ends within _LISTEN_TIMEOUT seconds; nothing waits for it."""
        self._stop.set()


def _listen(
    engine: Engine, stop: threading.Event, stale: threading.Event, listening: threading.Event
) -> None:
    while not stop.is_set():
        try:
            _listen_once(engine, stop, stale, listening)
        except Exception as exc:  # noqa: BLE001 - any failure: fall back to version reads
            log.warning("search-parameter listener: %s; reconnecting", exc.__class__.__name__)
        listening.clear()
        stale.set()
        stop.wait(_RECONNECT_DELAY)


def _listen_once(
    engine: Engine, stop: threading.Event, stale: threading.Event, listening: threading.Event
) -> None:
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        if not isinstance(driver, psycopg.Connection):  # LISTEN needs psycopg 3's notifies()
            raise RuntimeError("search-parameter listener needs a psycopg connection")
        driver.autocommit = True
        driver.execute(f"LISTEN {CHANNEL}")
        listening.set()
        stale.set()  # anything committed before LISTEN took effect
        while not stop.is_set():
            for _ in driver.notifies(timeout=_LISTEN_TIMEOUT, stop_after=1):
                stale.set()
    finally:
        raw.invalidate()  # never hand a LISTENing connection back to the pool
