"""The quick search: on SQLite, a search of a simple shape run on the driver's own connection
with its prebuilt statement, within a few milliseconds, for a caller that cannot wait long (the
event loop); anything else is left to ``store.search.search``."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Dialect, Select
from sqlalchemy.exc import OperationalError

from fhir_gateway.context import Caller
from fhir_gateway.errors import TooCostly, Unavailable
from fhir_gateway.settings import Settings
from fhir_gateway.store import search as store_search
from fhir_gateway.store import visibility
from fhir_gateway.store.budget import Budget
from fhir_gateway.store.db import Database

__all__ = ["quick_search"]


def quick_search(
    db: Database,
    resource_type: str | None,
    params: list[tuple[str, str]],
    *,
    caller: Caller,
    base_url: str,
    settings: Settings,
    within: float,
    strict: bool = False,
) -> bytes | None:
    """On SQLite, ``store.search.search``'s Bundle if the search is quick: one statement of a simple shape (a
    prebuilt statement on the index ranges of equal tokens and references, unsorted) for a
    caller served stored copies, done ``within`` seconds. Else None, nothing returned: run it
    with ``store.search.search``. For a caller that cannot afford to wait long (the event loop).

    It runs on the driver's own connection, as a read by id does (``Database.fetch_one``): the
    registry's version and the page, each one statement reading one snapshot."""
    if db.is_postgres:
        return None
    base_url = base_url.rstrip("/")
    try:
        pooled = db.engine.raw_connection()
    except OperationalError as exc:
        raise Unavailable(f"The database is unavailable: {exc.orig.__class__.__name__}") from exc
    try:
        cursor = pooled.cursor()
        try:
            if not db.search_parameters.loaded_is_current(cursor):
                return None  # the transaction of ``search`` loads it
            plan, shaped = store_search.parse_shaped(
                resource_type, params, strict, base_url, settings
            )
            store_search.require_search(caller, resource_type, plan)
            if not store_search.one_statement(plan) or visibility.current().restricted(caller):
                return None
            if shaped is None:
                return None
            on_driver = _OnDriver(cursor, db.engine.dialect)
            search = store_search.Search(
                on_driver, plan, caller, base_url, resource_type, Budget(within)
            )
            search.shaped = shaped  # taken with the plan
            sqlite_connection = pooled.driver_connection
            assert isinstance(sqlite_connection, sqlite3.Connection)
            with search.budget.on_sqlite(sqlite_connection):
                return search.bundle()
        except (TooCostly, _NotPrepared):
            return None
        finally:
            cursor.close()
    except sqlite3.Error as exc:
        pooled.invalidate()  # whatever went wrong, the next statement gets a fresh connection
        raise Unavailable(f"The database is unavailable: {exc.__class__.__name__}") from exc
    finally:
        pooled.close()


class _NotPrepared(Exception):
    """A statement of a quick search the driver cannot take as prepared (``Statements``)."""


class _OnDriver:
    """What ``store.search.Search`` runs its statements on here: the driver's cursor, each statement prepared once (``search_shapes.Statements.prepared``)."""

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self.cursor = cursor
        self.dialect = dialect

    def execute(self, query: Select[Any], values: Mapping[str, Any] | None = None) -> Any:
        bound = dict(values or {})
        prepared = store_search.STATEMENTS.prepared(query, bound, self.dialect)
        if prepared is None:
            raise _NotPrepared
        return self.cursor.execute(prepared.sql, prepared.arguments(bound))
