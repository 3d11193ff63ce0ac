"""``column IN (ids)`` written for each dialect's planner: on SQLite a correlated ``EXISTS``.

A search on two or more index criteria intersects their id sets, the first set's rows tested
against the others (``store.search_criteria._intersect``). Given ``a.res_id IN (SELECT b.res_id ...)``,
SQLite builds the whole of the inner set and probes the outer index once per inner row: for
``Task?owner=…&status=requested`` it lists every requested Task to find one owner's few. The
same test as a correlated ``EXISTS (SELECT 1 ... WHERE b.res_id = a.res_id)`` walks the first
range and probes the inner index once per row of it, building nothing. PostgreSQL plans both as
the same semi-join; it keeps the ``IN`` form whose plans bench/bench_scale.py measures.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ColumnElement, Select, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

__all__ = ["within"]


class _Within(ColumnElement[bool]):
    """``column IN (ids)``, rendered per dialect (see the module's doc)."""

    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True  # a test by itself: no "= 1" where booleans are integers
    _traverse_internals = [
        ("as_in", InternalTraversal.dp_clauseelement),
        ("as_exists", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, as_in: ColumnElement[bool], as_exists: ColumnElement[bool]) -> None:
        self.as_in = as_in
        self.as_exists = as_exists


def within(column: ColumnElement[Any], ids: Select[Any]) -> ColumnElement[bool]:
    """``column IN (ids)``, ``ids`` a select of one column from one table."""
    inner = ids.selected_columns[0]
    probe: Select[Any] = ids.with_only_columns(literal_column("1")).where(inner == column)
    return _Within(column.in_(ids), probe.exists())


@compiles(_Within)
def _compile_in(element: _Within, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.as_in, **kw))


@compiles(_Within, "sqlite")
def _compile_exists(element: _Within, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.as_exists, **kw))
