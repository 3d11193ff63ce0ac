"""Run a search plan as SQL (SQLAlchemy Core); ``search/bundle.py`` assembles the Bundle.

Every criterion becomes ``res_id IN (SELECT res_id FROM idx_* WHERE res_type = … AND param = …
AND <value test>)`` on the (res_type, param, value) indexes; chains and ``_has`` nest such
subqueries. The plain ones of a type are intersected inside the index tables first (one nested
DISTINCT subquery), so that a large match is paged without visiting every current row it holds.

Paging is keyset (seek) paging: a page token carries the sort key values and the (res_type,
res_id) of the last (or first) row shown, and the next page starts strictly after it, so rows
created or deleted meanwhile neither shift nor repeat the others and deep pages cost no OFFSET
scan. The rows come with their stored JSON text, served as they are or redacted for the caller.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeGuard

from sqlalchemy import (
    ColumnElement,
    Connection,
    Dialect,
    Select,
    Table,
    Text,
    and_,
    cast,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import NamedFromClause

from fhir_gateway import clock
from fhir_gateway.context import Caller
from fhir_gateway.errors import Forbidden, TooCostly, Unavailable
from fhir_gateway.search import plan as p
from fhir_gateway.search.bundle import Page, Redact, searchset
from fhir_gateway.search.extract import identifier_param
from fhir_gateway.search.registry import Registry, get_registry
from fhir_gateway.search.values import MAX_TIME, MIN_TIME
from fhir_gateway.settings import Settings
from fhir_gateway.store import search_shapes as shapes
from fhir_gateway.store import semi_join, visibility
from fhir_gateway.store.budget import Budget
from fhir_gateway.store.db import Database
from fhir_gateway.store.tables import (
    INDEX_TABLES,
    SORT_COLUMNS,
    idx_reference,
    idx_token,
    resources,
)

__all__ = [
    "search",
    "quick_search",
    "search_bundle",
    "match_ids",
    "match_fields",
    "limits_of",
    "JsonPath",
]

_MAX_ITERATE = 4  # rounds of _include:iterate / _revinclude:iterate


# -- public --------------------------------------------------------------------------------------


def search(
    db: Database,
    resource_type: str | None,
    params: list[tuple[str, str]],
    *,
    caller: Caller,
    base_url: str,
    settings: Settings,
    strict: bool = False,
    budget: Budget | None = None,
) -> bytes:
    """The complete ``searchset`` Bundle, as JSON bytes (see ``search_bundle``).

    A search that is one statement (its page: no count, no includes) for a caller whose copies
    are served as stored runs on a bare connection, as a read by id does: no ORM session, and on
    SQLite no transaction around its one statement, which reads one snapshot by itself. Any
    other search runs in a read transaction, its statements reading one snapshot together."""
    base_url = base_url.rstrip("/")
    with db.connection() as conn:
        db.search_parameters.ensure_current(conn)  # before the plan is parsed against it
        plan = _parse(resource_type, params, strict, base_url, settings)
        _require_search(caller, resource_type, plan)
        if _one_statement(plan) and not visibility.current().restricted(caller):
            return _bundle(conn, plan, caller, base_url, resource_type, settings, budget)
    return db.read(_bundle, plan, caller, base_url, resource_type, settings, budget)


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
    """On SQLite, ``search``'s Bundle if the search is quick: one statement of a simple shape (a
    prebuilt statement on the index ranges of equal tokens and references, unsorted) for a
    caller served stored copies, done ``within`` seconds. Else None, nothing returned: run it
    with ``search``. For a caller that cannot afford to wait long (the event loop).

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
            plan, shaped = _parse_shaped(resource_type, params, strict, base_url, settings)
            _require_search(caller, resource_type, plan)
            if not _one_statement(plan) or visibility.current().restricted(caller):
                return None
            if shaped is None:
                return None
            on_driver = _OnDriver(cursor, db.engine.dialect)
            search = _Search(on_driver, plan, caller, base_url, resource_type, Budget(within))
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
    """What ``_Search`` executes its statements on in ``quick_search``: the driver's cursor,
    each statement prepared once (``search_shapes.Statements.prepared``)."""

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self.cursor = cursor
        self.dialect = dialect

    def execute(self, query: Select[Any], values: Mapping[str, Any] | None = None) -> Any:
        bound = dict(values or {})
        prepared = _STATEMENTS.prepared(query, bound, self.dialect)
        if prepared is None:
            raise _NotPrepared
        return self.cursor.execute(prepared.sql, prepared.arguments(bound))


def search_bundle(
    session: Session,
    resource_type: str | None,
    params: list[tuple[str, str]],
    *,
    caller: Caller,
    base_url: str,
    settings: Settings,
    strict: bool = False,
    budget: Budget | None = None,
) -> bytes:
    """The complete ``searchset`` Bundle, as JSON bytes, in ``session``'s transaction.

    Past ``budget`` (default: ``settings.search_timeout`` from now) or a limit of the query, it
    raises ``TooCostly``."""
    base_url = base_url.rstrip("/")
    plan = _parse(resource_type, params, strict, base_url, settings)
    _require_search(caller, resource_type, plan)
    return _bundle(session, plan, caller, base_url, resource_type, settings, budget)


def _parse(
    resource_type: str | None,
    params: list[tuple[str, str]],
    strict: bool,
    base_url: str,
    settings: Settings,
) -> p.SearchPlan:
    return _parse_shaped(resource_type, params, strict, base_url, settings)[0]


def _parse_shaped(
    resource_type: str | None,
    params: list[tuple[str, str]],
    strict: bool,
    base_url: str,
    settings: Settings,
) -> tuple[p.SearchPlan, shapes.Template | None]:
    """The plan and its shape (``search_shapes.template``)."""
    registry = get_registry()
    return _parsed(
        resource_type,
        tuple(params),
        strict,
        base_url,
        settings.default_page_size,
        settings.max_page_size,
        limits_of(settings),
        registry,
        registry.version,
    )


# A partner polls with the same query again and again: its plan (immutable) is parsed once and
# its shape taken once, kept
# by everything the parse reads (the registry's version too: a parameter added re-parses). What
# does not parse raises each time, kept nowhere.
@functools.lru_cache(maxsize=512)
def _parsed(
    resource_type: str | None,
    params: tuple[tuple[str, str], ...],
    strict: bool,
    base_url: str,
    default_count: int,
    max_count: int,
    limits: p.Limits,
    registry: Registry,
    version: int,
) -> tuple[p.SearchPlan, shapes.Template | None]:
    plan = p.parse(
        resource_type,
        list(params),
        strict=strict,
        base_url=base_url,
        default_count=default_count,
        max_count=max_count,
        registry=registry,
        limits=limits,
    )
    return plan, shapes.template(plan)


def _one_statement(plan: p.SearchPlan) -> bool:
    """Whether the search runs its page's statement and no other (``_Search.bundle``)."""
    return (
        plan.summary != "count"
        and plan.count != 0
        and plan.total not in ("accurate", "estimate")
        and not plan.includes
    )


def _bundle(
    session: Session | Connection,
    plan: p.SearchPlan,
    caller: Caller,
    base_url: str,
    resource_type: str | None,
    settings: Settings,
    budget: Budget | None,
) -> bytes:
    budget = budget or Budget(settings.search_timeout)
    with budget.applied(session, local=_SHORT_QUERIES):
        return _Search(session, plan, caller, base_url, resource_type, budget).bundle()


def limits_of(settings: Settings) -> p.Limits:
    return p.Limits(
        search_max_parameters=settings.search_max_parameters,
        search_max_repeats=settings.search_max_repeats,
        search_max_includes=settings.search_max_includes,
        search_max_values=settings.search_max_values,
        search_max_sort_keys=settings.search_max_sort_keys,
    )


# A search reads index ranges and stops at the end of its page, yet PostgreSQL costs its plan by
# whole ranges (a large partner's Tasks) and, past thresholds, starts parallel workers (ms) and
# compiles it with LLVM JIT (seconds for a partner's row policy: 4.9 s measured at 1M). Neither
# pays off for milliseconds of work: both off, for this transaction only, in the round trip that
# sets the statement timeout (store.budget).
_SHORT_QUERIES = {"max_parallel_workers_per_gather": "0", "jit": "off"}


def match_ids(
    session: Session,
    resource_type: str,
    params: list[tuple[str, str]],
    *,
    caller: Caller,
    limit: int | None = None,
) -> list[str]:
    """Ids of the current resources matching ``params`` (for conditional interactions).

    Unknown parameters are an error here: ignoring one would widen the match.
    """
    criteria = [(n, val) for n, val in params if n not in p.RESULT_PARAMS]
    plan = p.parse(resource_type, criteria, strict=True)
    shaped = shapes.template(plan)
    if shaped is None:
        return list(session.execute(_ids_query(plan, caller, limit)).scalars())
    query = _STATEMENTS.get(
        ("ids", shaped.key, limit), caller, lambda: _ids_query(shaped.plan(), caller, limit)
    )
    return list(session.execute(query, shaped.values).scalars())


def _ids_query(plan: p.SearchPlan, caller: Caller, limit: int | None) -> Select[Any]:
    r = resources.alias("r")
    query = select(r.c.res_id).where(_where(plan, r, caller)).order_by(r.c.res_id)
    return query if limit is None else query.limit(limit)


# The statements of the searches of simple shapes (store.search_shapes), by shape and caller.
_STATEMENTS = shapes.Statements()


JsonPath = tuple[str | int, ...]


def match_fields(
    session: Session,
    resource_type: str,
    params: list[tuple[str, str]],
    fields: Mapping[str, JsonPath],
    *,
    caller: Caller,
    equal: Mapping[JsonPath, str] | None = None,
) -> list[dict[str, Any]]:
    """Like ``match_ids``, with a few scalar elements of each match read inside the database
    (``{"deadline": ("restriction", "period", "end")}`` → ``{"id": …, "deadline": "…"}``, text or
    None): one query that ranks thousands of rows without moving or parsing their whole JSON.
    ``equal`` keeps the matches whose element equals a text (where no search parameter covers
    that element, as ``Flag.status`` in R4), tested inside the database too."""
    criteria = [(n, val) for n, val in params if n not in p.RESULT_PARAMS]
    plan = p.parse(resource_type, criteria, strict=True)
    r = resources.alias("r")
    columns = [r.c.content[path].as_string().label(name) for name, path in fields.items()]
    tests = [r.c.content[path].as_string() == value for path, value in (equal or {}).items()]
    query = select(r.c.res_id, *columns).where(_where(plan, r, caller), *tests).order_by(r.c.res_id)
    return [
        {"id": row[0], **dict(zip(fields, row[1:], strict=True))} for row in session.execute(query)
    ]


def _require_search(caller: Caller, resource_type: str | None, plan: p.SearchPlan) -> None:
    # A search names its types (the path or _type): each must be searchable by the caller. A
    # system search without _type spans every type; the row filter keeps the permitted ones.
    named = (
        [resource_type]
        if resource_type
        else [t for n, v in plan.params if n == "_type" for t in v.split(",")]
    )
    for res_type in named:
        if res_type and not caller.can(res_type, "s"):
            raise Forbidden(f"Not permitted: search on {res_type}")


# -- WHERE ---------------------------------------------------------------------------------------


def _where(plan: p.SearchPlan, r: NamedFromClause, caller: Caller) -> ColumnElement[bool]:
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
    return and_(or_(*per_type), _visible(caller, r, only))


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


def _visible(
    caller: Caller, r: NamedFromClause, res_type: str | None = None
) -> ColumnElement[bool]:
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


# -- ORDER BY and keyset paging ------------------------------------------------------------------

SortExpr = tuple[Any, bool, bool]  # (expression, descending, may be NULL)


def _sort_exprs(plan: p.SearchPlan, r: NamedFromClause) -> list[SortExpr]:
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


def _order_by(keys: list[SortExpr], r: Any, *, forward: bool) -> list[Any]:
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


def _after(
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


# -- the search ----------------------------------------------------------------------------------


class _Search:
    def __init__(
        self,
        # A Connection, or the driver (quick_search), only for a caller served stored copies.
        session: Session | Connection | _OnDriver,
        plan: p.SearchPlan,
        caller: Caller,
        base_url: str,
        resource_type: str | None,
        budget: Budget,
    ) -> None:
        self.session = session
        self.budget = budget
        self.plan = plan
        self.caller = caller
        self.base_url = base_url
        self.resource_type = resource_type
        self.r = resources.alias("r")

    @functools.cached_property
    def where(self) -> ColumnElement[bool]:
        return _where(self.plan, self.r, self.caller)

    @functools.cached_property
    def shaped(self) -> shapes.Template | None:
        return shapes.template(self.plan)

    def bundle(self) -> bytes:
        if self.plan.summary == "count" or self.plan.count == 0:
            return self.searchset(None, self.count())
        rows, more_before, more_after = self.page()
        total = self.total(len(rows), more_after)
        return self.searchset(Page(rows, more_before, more_after, self.included(rows)), total)

    def searchset(self, page: Page | None, total: int | None) -> bytes:
        return searchset(
            self.plan,
            page,
            total=total,
            base_url=self.base_url,
            resource_type=self.resource_type,
            redact=self.redact(),
        )

    def redact(self) -> Redact | None:
        policy = visibility.current()
        if policy.restricted(self.caller):  # this caller gets its own copy (redacted, obligations)
            assert isinstance(self.session, Session)  # restricted callers search in a session
            return functools.partial(policy.serve, self.caller, session=self.session)
        return None

    def run(self, query: Select[Any], values: Mapping[str, Any] | None = None) -> Any:
        self.budget.check()  # the deadline holds for the request, not only for each statement
        return self.session.execute(query, values)

    def run_built(self, part: Hashable, build: Callable[[_Search], Select[Any]]) -> Any:
        """Run the statement ``build`` makes for this search; for a search of a simple shape,
        the one built for its shape (with bind parameters for its values) and kept."""
        shaped = self.shaped
        if shaped is None:
            return self.run(build(self))
        query = _STATEMENTS.get((part, shaped.key), self.caller, lambda: build(self.bound(shaped)))
        return self.run(query, shaped.values)

    def bound(self, shaped: shapes.Template) -> _Search:
        """This search over the template plan: its statements hold bind parameters."""
        return _Search(
            self.session, shaped.plan(), self.caller, self.base_url, self.resource_type, self.budget
        )

    # counting --------------------------------------------------------------------------------

    def count(self) -> int:
        return int(self.run_built("count", _Search.count_query).scalar_one())

    def count_query(self) -> Select[Any]:
        return select(func.count()).select_from(self.r).where(self.where)

    def total(self, shown: int, more_after: bool) -> int | None:
        mode = self.plan.total
        if mode == "none":
            return None
        if mode in ("accurate", "estimate"):
            return self.count()
        if self.plan.cursor is None and not more_after:
            return shown  # known for free: everything fits on the first page
        return None

    # the page --------------------------------------------------------------------------------

    def page(self) -> tuple[list[Any], bool, bool]:
        """Rows of this page, and whether rows exist before and after it."""
        plan = self.plan
        cursor = plan.cursor
        forward = cursor is None or cursor.forward
        if plan.count == 0:
            return [], False, self.count() > 0 if cursor is None else True
        rows = list(self.run_built("page", _Search.this_page_query))
        more = len(rows) > plan.count
        rows = rows[: plan.count]
        if forward:
            return rows, cursor is not None, more
        rows.reverse()
        return rows, more, True

    def this_page_query(self) -> Select[Any]:
        cursor = self.plan.cursor
        return self.page_query(
            _sort_exprs(self.plan, self.r), cursor, cursor is None or cursor.forward
        )

    def page_query(
        self, keys: list[SortExpr], cursor: p.Cursor | None, forward: bool
    ) -> Select[Any]:
        """The page's keys first, its bodies after: only the rows shown are fetched whole and
        turned into JSON text, not every candidate the sort and the limit pass over."""
        labelled = [expr.label(f"k{i}") for i, (expr, _, _) in enumerate(keys)]
        inner = select(self.r.c.res_type, self.r.c.res_id, *labelled).where(self.where)
        if cursor is not None:
            inner = inner.where(_after(keys, self.r, cursor.keys, forward))
        order = _order_by(keys, self.r, forward=forward)
        page = inner.order_by(*order).limit(self.plan.count + 1).subquery("page")
        body = resources.alias("body")
        page_keys = [
            (page.c[f"k{i}"], desc, nullable) for i, (_, desc, nullable) in enumerate(keys)
        ]
        return (
            select(
                page.c.res_type,
                page.c.res_id,
                cast(body.c.content, Text).label("body"),
                *(page.c[f"k{i}"] for i in range(len(keys))),
            )
            .join_from(
                page, body, and_(body.c.res_type == page.c.res_type, body.c.res_id == page.c.res_id)
            )
            .order_by(*_order_by(page_keys, page, forward=forward))
        )

    # includes --------------------------------------------------------------------------------

    def included(self, rows: list[Any]) -> list[Any]:
        if not self.plan.includes or not rows:
            return []
        seen = {(row[0], row[1]) for row in rows}
        found: list[Any] = []
        frontier = list(seen)
        for round_ in range(_MAX_ITERATE + 1):
            specs = [i for i in self.plan.includes if i.iterate or round_ == 0]
            new = [
                row
                for spec in specs
                for row in self.include_rows(spec, frontier)
                if (row[0], row[1]) not in seen
            ]
            frontier = []
            for row in new:
                if (row[0], row[1]) not in seen:
                    seen.add((row[0], row[1]))
                    found.append(row)
                    frontier.append((row[0], row[1]))
            if not frontier or not any(i.iterate for i in self.plan.includes):
                break
        return found

    def include_rows(self, spec: p.Include, frontier: list[tuple[str, str]]) -> list[Any]:
        by_type: dict[str, list[str]] = {}
        for res_type, res_id in frontier:
            by_type.setdefault(res_type, []).append(res_id)
        out: list[Any] = []
        for res_type, ids in by_type.items():
            out += self.run(self.include_query(spec, res_type, ids)).all()
        return out

    def include_query(self, spec: p.Include, res_type: str, ids: list[str]) -> Select[Any]:
        ref = idx_reference.alias("i")
        r = resources.alias("inc")
        body = cast(r.c.content, Text).label("body")
        if not spec.reverse:
            conds = [ref.c.res_type == res_type, ref.c.res_id.in_(ids)]
            if spec.source_type not in ("*", res_type):
                conds.append(false())
            join = and_(r.c.res_type == ref.c.target_type, r.c.res_id == ref.c.target_id)
            if spec.target_type:
                conds.append(ref.c.target_type == spec.target_type)
        else:
            conds = [ref.c.target_type == res_type, ref.c.target_id.in_(ids)]
            if spec.source_type != "*":
                conds.append(ref.c.res_type == spec.source_type)
            if spec.target_type not in (None, res_type):
                conds.append(false())
            join = and_(r.c.res_type == ref.c.res_type, r.c.res_id == ref.c.res_id)
        if spec.param is not None:
            conds.append(ref.c.param == spec.param)
        return (
            select(r.c.res_type, r.c.res_id, body)
            .select_from(ref.join(r, join))
            .where(*conds, r.c.deleted.is_(False), _visible(self.caller, r))
            .distinct()
        )
