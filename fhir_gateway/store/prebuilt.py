"""Hot statements compiled once per dialect and run on SQLAlchemy's thinnest path (issue 21:
statements prebuilt).

A Core statement run through ``Connection.execute`` pays at every call for SQLAlchemy's cache
key, parameter processing and result setup: about 100 µs of CPU beside the driver's 60–70 µs for
a short statement on PostgreSQL over loopback (measured on the 2-core development machine), and a
message runs a dozen of them. ``Prebuilt.run`` hands the SQL compiled once to the driver's cursor
through ``Connection._cursor_execute``, the path SQLAlchemy itself takes for its own side
statements: the engine's events (statement counting) and its error translation (an integrity
error, a lost connection invalidated) still apply, in the session's transaction.

Parameters go through their types' bind processors (JSON, SQLite's text datetimes), and columns
through their result processors; rows are named tuples. A statement whose compiled form needs
what only a full execution does (an expanding ``IN`` list, a Python-side column default) is
refused when first compiled, not run wrongly.
"""

from __future__ import annotations

import threading
from collections import namedtuple
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

__all__ = ["Prebuilt", "Rows", "run_sql"]

_Convert = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    positions: list[str]  # parameter names in order (positional drivers); empty: named
    # name → (name in the SQL, the value bound in the statement, processor, required)
    binds: dict[str, tuple[str, Any, _Convert, bool]]
    convert: list[_Convert]  # per column
    row: Any  # the named tuple of a row, or None (no rows)

    def parameters(self, given: dict[str, Any]) -> Any:
        values: dict[str, Any] = {}
        for name, (sql_name, bound, process, required) in self.binds.items():
            if name in given:
                value = given[name]
            elif required:
                raise KeyError(f"the statement needs a value for {name!r}")
            else:
                value = bound
            values[sql_name] = process(value) if process is not None else value
        return tuple(values[n] for n in self.positions) if self.positions else values


class Rows:
    """The rows of one run, fetched: ``first``, ``one``, ``scalar_one``, ``all``, iteration."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise LookupError(f"expected one row, got {len(self._rows)}")
        return self._rows[0]

    def scalar_one(self) -> Any:
        return self.one()[0]


class Prebuilt:
    """A Core statement compiled once per dialect: ``run`` it in a session's transaction, or
    read its SQL for a bare connection (``Database.fetch_one``)."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._by_dialect: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            with self._lock:
                found = self._by_dialect.get(dialect.name) or _compile(self.statement, dialect)
                self._by_dialect[dialect.name] = found
        return found

    def run(self, session: Session | Connection, params: dict[str, Any] | None = None) -> Rows:
        connection = session.connection() if isinstance(session, Session) else session
        compiled = self.compiled(connection.dialect)
        parameters = compiled.parameters(params or {})
        cursor = connection.connection.cursor()
        try:
            connection._cursor_execute(cursor, compiled.sql, parameters)  # noqa: SLF001 - see above
            if compiled.row is None or cursor.description is None:
                return Rows([])
            convert = compiled.convert
            make = compiled.row._make
            rows = [
                make([f(v) if f is not None else v for f, v in zip(convert, raw, strict=True)])
                for raw in cursor.fetchall()
            ]
            return Rows(rows)
        finally:
            cursor.close()


def run_sql(session: Session, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """SQL text written for the driver (PostgreSQL's bulk writes with array parameters), run as
    ``Prebuilt.run`` runs its own: the rows, as the driver returns them."""
    connection = session.connection()
    cursor = connection.connection.cursor()
    try:
        connection._cursor_execute(cursor, sql, parameters)  # noqa: SLF001 - see the module
        return list(cursor.fetchall()) if cursor.description is not None else []
    finally:
        cursor.close()


def _compile(statement: Executable, dialect: Dialect) -> _Compiled:
    compiled: Any = cast(Any, statement).compile(dialect=dialect)
    if compiled.post_compile_params or compiled.literal_execute_params:
        raise ValueError("a statement with expanding or literal parameters cannot be prebuilt")
    if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
        raise ValueError("a statement with Python-side column defaults cannot be prebuilt")
    escaped = getattr(compiled, "escaped_bind_names", None) or {}
    binds = {
        name: (
            escaped.get(name, name),
            bind.effective_value,
            bind.type.dialect_impl(dialect).bind_processor(dialect),
            bool(bind.required),
        )
        for name, bind in compiled.binds.items()
    }
    columns = list(getattr(statement, "exported_columns", ()))
    convert = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
    row = namedtuple("Row", [c.key for c in columns], rename=True) if columns else None  # noqa: PYI024
    positions = [escaped.get(n, n) for n in compiled.positiontup or []]
    return _Compiled(compiled.string, positions, binds, convert, row)
