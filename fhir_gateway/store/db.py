"""Engine, sessions and the unit of work, for SQLite (embedded default) and PostgreSQL.

Database errors are translated here, where they enter: a unique-key race becomes 409, a busy or
unreachable database 503; nothing from SQLAlchemy leaks past ``Database``.

PostgreSQL connections are not pinged with a round trip at each checkout (``pool_pre_ping``).
Instead a pooled connection whose server side has gone (the server closed it, restarted, or an
administrator terminated it) is recognised at checkout by its socket having something to read
while idle, a local check with no round trip, and replaced; and a unit of work (``write``,
``read``) that meets a lost connection before any of its statements succeeded runs once more on
a fresh one (SQLAlchemy has by then invalidated the pool's older connections).
"""

from __future__ import annotations

import select
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import orjson
import psycopg
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from fhir_gateway.errors import Conflict, Unavailable
from fhir_gateway.store import pg_arrays, transaction_memo
from fhir_gateway.store.keyed_ids import unit_of_work
from fhir_gateway.store.prebuilt import Prebuilt
from fhir_gateway.store.search_parameters import CHANGED, RegistrySync

__all__ = [
    "sqlite_in_a_file",
    "Database",
    "Reconnected",
    "SessionRules",
    "RULES",
    "make_engine",
    "is_postgres",
]

P = ParamSpec("P")
T = TypeVar("T")


# The key of ``session.info`` under which each session carries its database's rules.
RULES = "rules"


class SessionRules(Protocol):
    """What a database hands its sessions' transaction ends to (``fhir_gateway.hooks.Rules``)."""

    def session_event(self, point: str, session: Session, *args: Any) -> None: ...


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    # hide_parameters: a logged database error must not quote the values (PHI) it was writing
    common: dict[str, Any] = {
        "json_serializer": _json_dumps,
        "json_deserializer": orjson.loads,
        "hide_parameters": True,
    }
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **common
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, **common)
    event.listen(engine.pool, "connect", _counting_cursors)
    event.listen(engine.pool, "connect", pg_arrays.on_connect)
    event.listen(engine.pool, "checkout", _gone_at_checkout)
    return engine


def _gone_at_checkout(dbapi_conn, _record, _proxy) -> None:  # type: ignore[no-untyped-def]
    # An idle connection has nothing to read: readable means the server closed it (EOF, or the
    # FATAL message of pg_terminate_backend). DisconnectionError makes the pool replace it.
    try:
        fd = dbapi_conn.fileno()
    except Exception as exc:  # noqa: BLE001 - a closed connection has no socket
        raise DisconnectionError("connection closed") from exc
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    if poller.poll(0):
        raise DisconnectionError("the server closed this idle connection")


# -- which statements of a unit of work succeeded -------------------------------------------------
# Counted by the driver's cursor, not by an engine event: any engine event listener puts every
# statement on SQLAlchemy's slower evented path (bench/bench_checkout.py).

_STATEMENTS = "_fhir_gateway_statements"


class _CountingCursor(psycopg.Cursor[Any]):
    def execute(self, *args: Any, **kwargs: Any) -> Any:
        done = super().execute(*args, **kwargs)
        _counted(self)
        return done

    def executemany(self, *args: Any, **kwargs: Any) -> None:
        super().executemany(*args, **kwargs)
        _counted(self)


def _counted(cursor: psycopg.Cursor[Any]) -> None:
    counter = getattr(cursor.connection, _STATEMENTS, None)
    if counter is not None:
        counter[0] += 1


def _counting_cursors(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    if isinstance(dbapi_conn, psycopg.Connection) and dbapi_conn.cursor_factory is psycopg.Cursor:
        dbapi_conn.cursor_factory = _CountingCursor


def _statement_counter(connection: Connection) -> list[int] | None:
    """A count of the statements that succeed on ``connection`` from now on, or None when its
    driver does not count them."""
    raw = connection.connection.dbapi_connection
    if getattr(raw, "cursor_factory", None) is not _CountingCursor:
        return None
    counter = [0]
    setattr(raw, _STATEMENTS, counter)
    return counter


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers run beside the one writer
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
    # A writer takes the lock up front (BEGIN IMMEDIATE), so two writers queue instead of one
    # failing with "database is locked" when it upgrades a read; readers begin deferred; a
    # single statement (Database.connection) reads its own snapshot without BEGIN … COMMIT.
    options = conn.get_execution_options()
    if options.get("single_statement"):
        return
    if options.get("readonly"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


class Reconnected(Unavailable):
    """The connection was lost before the unit of work did anything: it may simply run again."""


def _fetch_one(pooled: Any, postgres: bool, sql: str, args: Any) -> Any:
    if not postgres:  # SQLite, isolation_level None: the statement alone reads one snapshot
        cursor = pooled.cursor()
        try:
            cursor.execute(sql, args)
            return cursor.fetchone()
        finally:
            cursor.close()
    driver = pooled.driver_connection
    driver.autocommit = True
    try:
        return driver.execute(sql, args).fetchone()
    finally:
        driver.autocommit = False


def sqlite_in_a_file(engine: Engine) -> bool:
    """SQLite in a file: another connection sees the same database (in memory it would not)."""
    database = engine.url.database
    return (
        engine.dialect.name == "sqlite"
        and bool(database)
        and database != ":memory:"
        and "mode=memory" not in str(database)
    )


class _ThreadConnections:
    """SQLite: each thread's own DBAPI connection for ``fetch_one``, taken from the pool once
    (set up as every connection is) and detached from it. The hottest read then does no pool
    checkout and check-in (a third of its statement's CPU). A statement in autocommit mode
    leaves no transaction open, so the connection never holds a stale snapshot. ``dispose``
    starts a new generation: each thread replaces its connection at its next statement (a
    thread that ends takes its connection with it)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self._generation = 0

    def fetch_one(self, sql: str, args: Any) -> Any:
        connection = self._connection()
        cursor = connection.cursor()
        try:
            cursor.execute(sql, args)
            return cursor.fetchone()
        except sqlite3.Error as exc:
            self._drop()  # whatever went wrong, the next statement gets a fresh connection
            raise Unavailable(f"The database is unavailable: {exc.__class__.__name__}") from exc
        finally:
            cursor.close()

    def dispose(self) -> None:
        self._generation += 1
        self._drop()

    def _connection(self) -> Any:
        held = getattr(self._local, "held", None)
        if held is not None and held[0] == self._generation:
            return held[1]
        self._drop()
        try:
            pooled = self._engine.raw_connection()
        except OperationalError as exc:
            raise Unavailable(
                f"The database is unavailable: {exc.orig.__class__.__name__}"
            ) from exc
        pooled.detach()  # this thread's from now on: closing it closes the connection
        self._local.held = (self._generation, pooled)
        return pooled

    def _drop(self) -> None:
        held = getattr(self._local, "held", None)
        self._local.held = None
        if held is not None:
            held[1].close()


class Database:
    """The unit of work: ``write``/``read`` run a function in one transaction.

    ``use_rules`` gives it the rules of the app it serves (``fhir_gateway.hooks.Rules``): every
    session it opens carries them (``session.info[RULES]``) and reports its transaction's end to
    them (``before_commit``, ``after_commit``, ``after_rollback``). Without, writes run bare."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        self._readonly_engine = self.engine.execution_options(readonly=True)
        self._reader = sessionmaker(self._readonly_engine, expire_on_commit=False)
        self._statement_engine = self.engine.execution_options(readonly=True, single_statement=True)
        # Every transaction sees the SearchParameters committed before it began, in any process.
        self.search_parameters = RegistrySync(self.engine)
        self.rules: SessionRules | None = None
        self._thread_connections = (
            _ThreadConnections(self.engine) if sqlite_in_a_file(self.engine) else None
        )
        event.listen(self._writer, "after_commit", self._after_commit)
        event.listen(self._writer, "after_rollback", self._after_rollback)
        for maker in (self._writer, self._reader):
            for point in ("before_commit", "after_commit", "after_rollback", "after_soft_rollback"):
                event.listen(maker, point, self._dispatch(point))
            event.listen(maker, "after_transaction_end", transaction_memo.forget)

    def use_rules(self, rules: SessionRules | None) -> None:
        """The rules every session opened from now on carries (replacing any before)."""
        self.rules = rules
        for maker in (self._writer, self._reader):
            maker.configure(info={RULES: rules} if rules is not None else {})

    @staticmethod
    def _dispatch(point: str) -> Callable[[Session], None]:
        def dispatch(session: Session, *args: Any) -> None:
            rules = session.info.get(RULES)
            if rules is not None:
                rules.session_event(point, session, *args)

        return dispatch

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(CHANGED, False):
            self.search_parameters.mark_stale()

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(CHANGED, None)

    @property
    def is_postgres(self) -> bool:
        return is_postgres(self.engine)

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        factory = self._reader if readonly else self._writer
        executed: list[int] | None = None
        try:
            with (
                factory() as session,
                unit_of_work(session),
                session.begin(),
            ):  # ids derived on commit too
                connection = session.connection()
                # Before anything is parsed against the registry, not at the first statement.
                self.search_parameters.ensure_current(connection)
                executed = _statement_counter(connection)  # reading the registry did nothing
                yield session
        except IntegrityError as exc:
            raise Conflict("The change conflicts with a concurrent one; retry") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated and executed is not None and not executed[0]:
                raise Reconnected("The database connection was lost; retry") from exc
            if exc.connection_invalidated:
                raise Unavailable("The database connection was lost; retry") from exc
            if isinstance(exc, OperationalError):
                raise Unavailable(
                    f"The database is unavailable: {exc.orig.__class__.__name__}"
                ) from exc
            raise

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A bare read-only connection for the hottest reads, of one statement each: no ORM
        session to set up, and on SQLite no transaction around the statement."""
        try:
            with self._statement_engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            raise Unavailable(
                f"The database is unavailable: {exc.orig.__class__.__name__}"
            ) from exc

    def fetch_one(self, query: Prebuilt, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row of ``query`` as one autocommitted statement on a DBAPI connection: no
        SQLAlchemy connection or transaction, and on PostgreSQL one round trip instead of BEGIN,
        SELECT and ROLLBACK. On SQLite in a file, the calling thread's own connection
        (``_ThreadConnections``); otherwise a pooled one."""
        compiled = query.compiled(self.engine.dialect)
        args = compiled.parameters(params)
        if self._thread_connections is not None:
            row = self._thread_connections.fetch_one(compiled.sql, args)
        else:
            row = self._pooled_fetch_one(compiled.sql, args)
        if row is None:
            return None
        convert = compiled.convert
        return tuple(f(v) if f is not None else v for f, v in zip(convert, row, strict=True))

    def _pooled_fetch_one(self, sql: str, args: Any) -> Any:
        dbapi = self.engine.dialect.loaded_dbapi
        try:
            pooled = self.engine.raw_connection()
        except OperationalError as exc:
            raise Unavailable(
                f"The database is unavailable: {exc.orig.__class__.__name__}"
            ) from exc
        try:
            return _fetch_one(pooled, self.is_postgres, sql, args)
        except dbapi.Error as exc:
            pooled.invalidate()  # whatever went wrong, the next statement gets a fresh connection
            raise Unavailable(f"The database is unavailable: {exc.__class__.__name__}") from exc
        finally:
            pooled.close()

    def write(
        self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        try:
            with self.session() as session:
                return fn(session, *args, **kwargs)
        except Reconnected:  # nothing was done: once more, on a fresh connection
            with self.session() as session:
                return fn(session, *args, **kwargs)

    def read(
        self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        try:
            with self.session(readonly=True) as session:
                return fn(session, *args, **kwargs)
        except Reconnected:
            with self.session(readonly=True) as session:
                return fn(session, *args, **kwargs)

    def dispose(self) -> None:
        self.search_parameters.stop()
        if self._thread_connections is not None:
            self._thread_connections.dispose()
        self.engine.dispose()
