"""The WHERE of a search plan (SQLAlchemy Core): its criteria, chains and ``_has``, the value
test of each parameter type, and the caller's row filter (``store.visibility``).

Every criterion becomes ``res_id IN (SELECT res_id FROM idx_* WHERE res_type = … AND param = …
AND <value test>)`` on the (res_type, param, value) indexes; chains and ``_has`` nest such
subqueries. The plain ones of a type are intersected inside the index tables first (one nested
DISTINCT subquery), so that a large match is paged without visiting every current row it holds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeGuard

from sqlalchemy import ColumnElement, Select, Table, and_, false, not_, or_, select, true
from sqlalchemy.sql.selectable import NamedFromClause

from fhir_gateway import clock
from fhir_gateway.context import Caller
from fhir_gateway.search import plan as p
from fhir_gateway.search.extract import identifier_param
from fhir_gateway.search.values import MAX_TIME, MIN_TIME
from fhir_gateway.store import semi_join, visibility
from fhir_gateway.store.tables import INDEX_TABLES, idx_reference, idx_token, resources

__all__ = ["visible", "where"]


def where(plan: p.SearchPlan, r: NamedFromClause, caller: Caller) -> ColumnElement[bool]:
    per_type = []
    for res_type in plan.types:
        conds: list[ColumnElement[bool]] = [r.c.res_type == res_type]
        indexed: list[Select[Any]] = []
        for criterion in plan.criteria:
            node = dict(criterion.by_type).get(res_type)
            if node is None:
                conds.append(false())
            elif _in_index(node):
                indexed.append(_index_ids(res_type, node))
            else:
                conds.append(_cond(res_type, r, node, caller))
        # Deleted resources have no index rows: a match in the index is live, and the current
        # rows need no visit to find out (the first page of a large match stays index-only).
        conds.append(r.c.res_id.in_(_intersect(indexed)) if indexed else r.c.deleted.is_(False))
        per_type.append(and_(*conds))
    only = (
        plan.types[0] if len(plan.types) == 1 else None
    )  # then the policy may leave out other types' rules
    return and_(or_(*per_type), visible(caller, r, only))


def _in_index(node: p.Node) -> TypeGuard[p.Test]:
    """A plain positive test: its matches are a set of ids from one index table."""
    return (
        isinstance(node, p.Test)
        and node.modifier not in ("not", "missing")
        and node.param.code not in ("_id", "_lastUpdated")
    )


def _intersect(id_sets: list[Select[Any]]) -> Select[Any]:
    """The ids in every set, nested (``a.res_id IN (b) AND a.res_id IN (c)``) so that the
    database intersects them inside the index tables, merging their res_id-ordered index ranges
    (migration 0009), before it visits any current row. DISTINCT tells PostgreSQL the set is
    unique as it comes, in res_id order: it then reads the current rows in that order and stops
    at the end of the page, where it would otherwise hash the whole set and sort all matches.
    On SQLite the nested sets are probed row by row instead (``store.semi_join``)."""
    first, *rest = id_sets
    res_id = first.selected_columns[0]
    return first.where(*(semi_join.within(res_id, ids) for ids in rest)).distinct()


def visible(caller: Caller, r: NamedFromClause, res_type: str | None = None) -> ColumnElement[bool]:
    # Per-caller row filtering (store.visibility): matches, includes, chains, _has alike.
    cond = visibility.current().where(caller, r, res_type)
    return true() if cond is None else cond


def _visible_ids(res_type: str, ids: Select[Any], caller: Caller) -> Select[Any]:
    """``ids`` of ``res_type`` narrowed to the rows the caller may see (chains and _has must not
    reveal, through what matches, resources the caller could not read)."""
    r2 = resources.alias()
    cond = visibility.current().where(caller, r2, res_type)
    if cond is None:
        return ids
    return select(r2.c.res_id).where(
        r2.c.res_type == res_type, r2.c.res_id.in_(ids), r2.c.deleted.is_(False), cond
    )


def _cond(res_type: str, r: NamedFromClause, node: p.Node, caller: Caller) -> ColumnElement[bool]:
    if isinstance(node, p.AllOf):
        return and_(*(_cond(res_type, r, n, caller) for n in node.nodes))
    if isinstance(node, p.AnyOf):
        return or_(*(_cond(res_type, r, n, caller) for n in node.nodes))
    if isinstance(node, p.Chain):
        return r.c.res_id.in_(_chain_ids(res_type, node, caller))
    if isinstance(node, p.Has):
        return r.c.res_id.in_(_has_ids(res_type, node, caller))
    return _test_cond(res_type, r, node)


def _test_cond(res_type: str, r: NamedFromClause, test: p.Test) -> ColumnElement[bool]:
    code = test.param.code
    if code in ("_id", "_lastUpdated") and test.modifier == "missing":
        return false() if test.missing else true()  # every resource has both
    if code == "_id":
        ids = [val.code for val in test.values if isinstance(val, p.TokenValue) and val.code]
        cond = r.c.res_id.in_(ids)
        return not_(cond) if test.modifier == "not" else cond
    if code == "_lastUpdated":
        return or_(
            *(
                _date_cond(val, r.c.last_updated, r.c.last_updated, point=True)
                for val in test.values
                if isinstance(val, p.DateValue)
            )
        )
    if test.modifier == "missing":
        table = _table_of(test)
        present = select(table.c.res_id).where(
            table.c.res_type == res_type, table.c.param == _param_name(test)
        )
        return r.c.res_id.not_in(present) if test.missing else r.c.res_id.in_(present)
    found = _index_ids(res_type, test)
    return r.c.res_id.not_in(found) if test.modifier == "not" else r.c.res_id.in_(found)


def _id_set(res_type: str, node: p.Node, caller: Caller) -> Select[Any]:
    """``SELECT res_id`` of the current resources of ``res_type`` matching ``node``."""
    if (
        isinstance(node, p.Test)
        and not node.negated
        and node.param.code not in ("_id", "_lastUpdated")
    ):
        return _index_ids(res_type, node)  # deleted resources have no index rows
    if isinstance(node, p.Chain):
        return _chain_ids(res_type, node, caller)
    if isinstance(node, p.Has):
        return _has_ids(res_type, node, caller)
    r2 = resources.alias()
    return select(r2.c.res_id).where(
        r2.c.res_type == res_type, r2.c.deleted.is_(False), _cond(res_type, r2, node, caller)
    )


def _chain_ids(res_type: str, chain: p.Chain, caller: Caller) -> Select[Any]:
    ref = idx_reference.alias()
    targets = [
        and_(
            ref.c.target_type == target,
            ref.c.target_id.in_(_visible_ids(target, _id_set(target, inner, caller), caller)),
        )
        for target, inner in chain.targets
    ]
    return select(ref.c.res_id).where(
        ref.c.res_type == res_type, ref.c.param == chain.param.code, or_(*targets)
    )


def _has_ids(res_type: str, has: p.Has, caller: Caller) -> Select[Any]:
    ref = idx_reference.alias()
    sources = _visible_ids(has.source_type, _id_set(has.source_type, has.inner, caller), caller)
    return select(ref.c.target_id).where(
        ref.c.res_type == has.source_type,
        ref.c.param == has.param.code,
        ref.c.target_type == res_type,
        ref.c.res_id.in_(sources),
    )


def _table_of(test: p.Test) -> Any:
    if test.modifier == "identifier":
        return idx_token
    return INDEX_TABLES[test.param.type]


def _param_name(test: p.Test) -> str:
    return identifier_param(test.param.code) if test.modifier == "identifier" else test.param.code


def _index_ids(res_type: str, test: p.Test) -> Select[Any]:
    table = _table_of(test).alias()
    kind = "token" if test.modifier == "identifier" else test.param.type
    matcher = _MATCHERS[kind]
    values = or_(*(matcher(table, test.modifier, val) for val in test.values))
    return select(table.c.res_id).where(
        table.c.res_type == res_type, table.c.param == _param_name(test), values
    )


# -- value tests, one per parameter type ---------------------------------------------------------


def _string_match(t: Table, modifier: str | None, val: p.StringValue) -> ColumnElement[bool]:
    if modifier == "exact":
        return t.c.exact == val.text
    if modifier == "contains":
        return t.c.value.contains(val.folded, autoescape=True)
    return t.c.value.startswith(val.folded, autoescape=True)


def _token_match(t: Table, modifier: str | None, val: p.TokenValue) -> ColumnElement[bool]:
    if modifier == "text":
        return t.c.text.startswith(val.code or "", autoescape=True)
    conds = []
    if val.code is not None:
        conds.append(t.c.code == val.code)
    if val.system_given:
        conds.append(t.c.system == val.system if val.system is not None else t.c.system.is_(None))
    return and_(*conds)


def _reference_match(t: Table, modifier: str | None, val: p.ReferenceValue) -> ColumnElement[bool]:
    if val.url is not None:
        return t.c.url == val.url
    cond = t.c.target_id == val.id
    if len(val.types) == 1:
        return and_(cond, t.c.target_type == val.types[0])
    return cond


def _date_match(t: Table, modifier: str | None, val: p.DateValue) -> ColumnElement[bool]:
    return _date_cond(val, t.c.low, t.c.high, point=False)


def _date_cond(
    val: p.DateValue, low: ColumnElement[Any], high: ColumnElement[Any], *, point: bool
) -> ColumnElement[bool]:
    """FHIR's date comparison of a stored ``[low, high)`` range with the value's range.

    A point in time (``_lastUpdated``) is ``[t, t]``: "high above x" becomes ``t >= x``.
    """
    sl, sh = val.low, val.high

    def high_gt(x: datetime) -> ColumnElement[bool]:
        return high >= x if point else high > x

    def high_le(x: datetime) -> ColumnElement[bool]:
        return high < x if point else high <= x

    within = and_(low >= sl, high_le(sh))
    prefix = val.prefix
    if prefix == "eq":
        return within
    if prefix == "ne":
        return not_(within)
    if prefix == "gt":
        return high_gt(sh)
    if prefix == "lt":
        return low < sl
    if prefix == "ge":
        return or_(high_gt(sh), within)
    if prefix == "le":
        return or_(low < sl, within)
    if prefix == "sa":
        return low >= sh
    if prefix == "eb":
        return high_le(sl)
    # ap: overlap with the value widened by 10% of its distance from now (at least a day)
    now = clock.to_db(clock.now())
    gap = max(abs(now - sl) / 10, timedelta(days=1))
    wide_low = sl - gap if sl - MIN_TIME > gap else MIN_TIME
    wide_high = sh + gap if MAX_TIME - sh > gap else MAX_TIME
    return and_(low < wide_high, high_gt(wide_low) if point else high > wide_low)


def _number_match(t: Table, modifier: str | None, val: p.NumberValue) -> ColumnElement[bool]:
    cond = _number_cond(val, t.c.value)
    if not val.system_given:
        return cond
    extra = []
    if val.system is not None:
        extra.append(t.c.system == val.system)
    if val.code is not None:
        extra.append(
            t.c.code == val.code
            if val.system is not None
            else or_(t.c.code == val.code, t.c.unit == val.code)
        )
    return and_(cond, *extra)


def _number_cond(val: p.NumberValue, col: ColumnElement[Any]) -> ColumnElement[bool]:
    prefix = val.prefix
    if prefix == "eq":
        return and_(col >= val.low, col < val.high)
    if prefix == "ne":
        return or_(col < val.low, col >= val.high)
    if prefix in ("gt", "sa"):
        return col > val.value
    if prefix in ("lt", "eb"):
        return col < val.value
    if prefix == "ge":
        return col >= val.value
    if prefix == "le":
        return col <= val.value
    margin = abs(val.value) / 10 or (val.high - val.low)
    return and_(col >= val.value - margin, col <= val.value + margin)


def _uri_match(t: Table, modifier: str | None, val: p.UriValue) -> ColumnElement[bool]:
    if modifier == "below":
        return t.c.value.startswith(val.text, autoescape=True)
    if modifier == "above":
        prefixes = [val.text[: i + 1] for i, ch in enumerate(val.text) if ch == "/"] + [val.text]
        return t.c.value.in_(prefixes)
    return t.c.value == val.text


_MATCHERS: dict[str, Any] = {
    "string": _string_match,
    "token": _token_match,
    "reference": _reference_match,
    "date": _date_match,
    "number": _number_match,
    "quantity": _number_match,
    "uri": _uri_match,
}
