"""Arrays of a type known in advance, for the bulk statements on PostgreSQL.

psycopg finds the element type of a list parameter by looking at its elements, twice per list
(in Python), and builds a dumper for it each time; a bulk write sends some fifty lists. A list
of one of these classes says its type: the dumpers ``register`` adds to a connection take it as
given. On a connection without them (or SQLite) they are plain lists."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.adapt import AdaptersMap
from psycopg.postgres import types as pg_types
from psycopg.types.array import ListBinaryDumper

__all__ = ["Texts", "Ints", "Bools", "register"]


class Texts(list[Any]):
    """text[]: str or None elements only."""


class Ints(list[Any]):
    """int4[]: int or None elements only."""


class Bools(list[Any]):
    """bool[]: bool or None elements only."""


def _dumper(element: str) -> type[ListBinaryDumper]:
    info = pg_types[element]
    assert info is not None
    attrs = {"element_oid": info.oid, "oid": info.array_oid}
    return type(f"Known{element.capitalize()}ArrayDumper", (ListBinaryDumper,), attrs)


_DUMPERS = ((Texts, _dumper("text")), (Ints, _dumper("int4")), (Bools, _dumper("bool")))


def register(adapters: AdaptersMap) -> None:
    """Add the dumpers to one connection's adapters (not psycopg's global ones)."""
    for cls, dumper in _DUMPERS:
        adapters.register_dumper(cls, dumper)


def on_connect(dbapi_conn: Any, _record: Any) -> None:
    """The pool's ``connect`` listener."""
    if isinstance(dbapi_conn, psycopg.Connection):
        register(dbapi_conn.adapters)
