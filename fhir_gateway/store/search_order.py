"""The ORDER BY of a search (``_sort``, then the (res_type, res_id) tie-breaker) and keyset
paging: a page token carries the sort key values of the last (or first) row shown, and the next
page starts strictly after it, so rows created or deleted meanwhile neither shift nor repeat the
others and deep pages cost no OFFSET scan."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select
from sqlalchemy.sql.selectable import NamedFromClause

from fhir_gateway.search import plan as p
from fhir_gateway.store.tables import INDEX_TABLES, SORT_COLUMNS

__all__ = ["SortExpr", "after", "order_by", "sort_exprs"]

SortExpr = tuple[Any, bool, bool]  # (expression, descending, may be NULL)


def sort_exprs(plan: p.SearchPlan, r: NamedFromClause) -> list[SortExpr]:
    """One ORDER BY expression per ``_sort`` key (the (res_type, res_id) tie-breaker comes last)."""
    keys: list[SortExpr] = []
    for key in plan.sort:
        if key.type == "id":
            keys.append((r.c.res_id, key.descending, False))
        elif key.type == "lastUpdated":
            keys.append((r.c.last_updated, key.descending, False))
        else:
            # A parameter with several values sorts by its lowest (ascending) or highest value.
            table = INDEX_TABLES[key.type].alias()
            column = table.c[SORT_COLUMNS[key.type]]
            agg = func.max(column) if key.descending else func.min(column)
            value = (
                select(agg)
                .where(
                    table.c.res_type == r.c.res_type,
                    table.c.res_id == r.c.res_id,
                    table.c.param == key.code,
                )
                .scalar_subquery()
            )
            keys.append((value, key.descending, True))
    return keys


def order_by(keys: list[SortExpr], r: Any, *, forward: bool) -> list[Any]:
    # Missing values sort last in both directions, the same on both databases: (expr IS NULL)
    # is an explicit first component instead of the dialects' differing NULL ordering.
    order: list[Any] = []
    for expr, desc, nullable in keys:
        if nullable:
            order.append(_direction(expr.is_(None), False, forward))
        order.append(_direction(expr, desc, forward))
    return order + [
        _direction(r.c.res_type, False, forward),
        _direction(r.c.res_id, False, forward),
    ]


def _direction(expr: Any, desc: bool, forward: bool) -> Any:
    return expr.desc() if desc == forward else expr.asc()


def after(
    keys: list[SortExpr], r: NamedFromClause, values: Sequence[Any], forward: bool
) -> ColumnElement[bool]:
    """Rows strictly after (``forward``) or before the cursor row in the sort order.

    The order is lexicographic over components, so "after" is
    ``c1 > v1 OR (c1 = v1 AND c2 > v2) OR …``; a nullable key contributes its IS NULL flag first.
    """
    steps: list[tuple[ColumnElement[bool], ColumnElement[bool]]] = []  # (beyond, equal)
    for (expr, desc, nullable), value in zip(keys, values, strict=False):
        if nullable:
            if value is None:
                steps.append((false() if forward else expr.is_not(None), expr.is_(None)))
                continue
            steps.append((expr.is_(None) if forward else false(), expr.is_not(None)))
        beyond = (expr > value) if desc != forward else (expr < value)
        steps.append((beyond, expr == value))
    for column, value in ((r.c.res_type, values[-2]), (r.c.res_id, values[-1])):
        steps.append(((column > value) if forward else (column < value), column == value))
    alternatives = []
    equal_so_far: list[ColumnElement[bool]] = []
    for beyond, equal in steps:
        alternatives.append(and_(*equal_so_far, beyond))
        equal_so_far.append(equal)
    return or_(*alternatives)
