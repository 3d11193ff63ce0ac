"""Run a search plan as SQL (SQLAlchemy Core); ``search/bundle.py`` assembles the Bundle.

The WHERE comes from ``store.search_criteria``, the ORDER BY and the keyset paging from
``store.search_order``; searches of a simple shape run a statement built once for their shape
(``store.search_shapes``), on SQLite even on the driver's own connection (``store.quick_search``).
The rows come with their stored JSON text, served as they are or redacted for the caller.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Text,
    and_,
    cast,
    false,
    func,
    select,
)
from sqlalchemy.orm import Session

from fhir_gateway.context import Caller
from fhir_gateway.errors import Forbidden
from fhir_gateway.search import plan as p
from fhir_gateway.search.bundle import Page, Redact, searchset
from fhir_gateway.search.registry import Registry, get_registry
from fhir_gateway.settings import Settings
from fhir_gateway.store import search_criteria as criteria
from fhir_gateway.store import search_order as ordering
from fhir_gateway.store import search_shapes as shapes
from fhir_gateway.store import visibility
from fhir_gateway.store.budget import Budget
from fhir_gateway.store.db import Database
from fhir_gateway.store.tables import (
    idx_reference,
    resources,
)

__all__ = [
    "search",
    "search_bundle",
    "match_ids",
    "match_fields",
    "limits_of",
    "JsonPath",
    "Search",
    "STATEMENTS",
    "parse_shaped",
    "require_search",
    "one_statement",
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
        require_search(caller, resource_type, plan)
        if one_statement(plan) and not visibility.current().restricted(caller):
            return _bundle(conn, plan, caller, base_url, resource_type, settings, budget)
    return db.read(_bundle, plan, caller, base_url, resource_type, settings, budget)


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
    require_search(caller, resource_type, plan)
    return _bundle(session, plan, caller, base_url, resource_type, settings, budget)


def _parse(
    resource_type: str | None,
    params: list[tuple[str, str]],
    strict: bool,
    base_url: str,
    settings: Settings,
) -> p.SearchPlan:
    return parse_shaped(resource_type, params, strict, base_url, settings)[0]


def parse_shaped(
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


def one_statement(plan: p.SearchPlan) -> bool:
    """Whether the search runs its page's statement and no other (``Search.bundle``)."""
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
        return Search(session, plan, caller, base_url, resource_type, budget).bundle()


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
    given = [(n, val) for n, val in params if n not in p.RESULT_PARAMS]
    plan = p.parse(resource_type, given, strict=True)
    shaped = shapes.template(plan)
    if shaped is None:
        return list(session.execute(_ids_query(plan, caller, limit)).scalars())
    query = STATEMENTS.get(
        ("ids", shaped.key, limit), caller, lambda: _ids_query(shaped.plan(), caller, limit)
    )
    prebuilt = STATEMENTS.prebuilt(query, session.get_bind().dialect)
    if prebuilt is not None:  # the engines' searches: a dozen per discharge
        return [row[0] for row in prebuilt.run(session, shaped.values)]
    return list(session.execute(query, shaped.values).scalars())


def _ids_query(plan: p.SearchPlan, caller: Caller, limit: int | None) -> Select[Any]:
    r = resources.alias("r")
    query = select(r.c.res_id).where(criteria.where(plan, r, caller)).order_by(r.c.res_id)
    return query if limit is None else query.limit(limit)


# The statements of the searches of simple shapes (store.search_shapes), by shape and caller.
STATEMENTS = shapes.Statements()


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
    given = [(n, val) for n, val in params if n not in p.RESULT_PARAMS]
    plan = p.parse(resource_type, given, strict=True)
    r = resources.alias("r")
    columns = [r.c.content[path].as_string().label(name) for name, path in fields.items()]
    tests = [r.c.content[path].as_string() == value for path, value in (equal or {}).items()]
    query = (
        select(r.c.res_id, *columns)
        .where(criteria.where(plan, r, caller), *tests)
        .order_by(r.c.res_id)
    )
    return [
        {"id": row[0], **dict(zip(fields, row[1:], strict=True))} for row in session.execute(query)
    ]


def require_search(caller: Caller, resource_type: str | None, plan: p.SearchPlan) -> None:
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


class Executes(Protocol):
    """What a search runs its statements on besides a session or connection (the driver's
    cursor in ``store.quick_search``)."""

    def execute(self, query: Select[Any], values: Mapping[str, Any] | None = None) -> Any: ...


# -- the search ----------------------------------------------------------------------------------


class Search:
    def __init__(
        self,
        # A Connection, or the driver (quick_search), only for a caller served stored copies.
        session: Session | Connection | Executes,
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
        return criteria.where(self.plan, self.r, self.caller)

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

    def run_built(self, part: Hashable, build: Callable[[Search], Select[Any]]) -> Any:
        """Run the statement ``build`` makes for this search; for a search of a simple shape,
        the one built for its shape (with bind parameters for its values) and kept."""
        shaped = self.shaped
        if shaped is None:
            return self.run(build(self))
        query = STATEMENTS.get((part, shaped.key), self.caller, lambda: build(self.bound(shaped)))
        return self.run(query, shaped.values)

    def bound(self, shaped: shapes.Template) -> Search:
        """This search over the template plan: its statements hold bind parameters."""
        return Search(
            self.session, shaped.plan(), self.caller, self.base_url, self.resource_type, self.budget
        )

    # counting --------------------------------------------------------------------------------

    def count(self) -> int:
        return int(self.run_built("count", Search.count_query).scalar_one())

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
        rows = list(self.run_built("page", Search.this_page_query))
        more = len(rows) > plan.count
        rows = rows[: plan.count]
        if forward:
            return rows, cursor is not None, more
        rows.reverse()
        return rows, more, True

    def this_page_query(self) -> Select[Any]:
        cursor = self.plan.cursor
        return self.page_query(
            ordering.sort_exprs(self.plan, self.r), cursor, cursor is None or cursor.forward
        )

    def page_query(
        self, keys: list[ordering.SortExpr], cursor: p.Cursor | None, forward: bool
    ) -> Select[Any]:
        """The page's keys first, its bodies after: only the rows shown are fetched whole and
        turned into JSON text, not every candidate the sort and the limit pass over."""
        labelled = [expr.label(f"k{i}") for i, (expr, _, _) in enumerate(keys)]
        inner = select(self.r.c.res_type, self.r.c.res_id, *labelled).where(self.where)
        if cursor is not None:
            inner = inner.where(ordering.after(keys, self.r, cursor.keys, forward))
        order = ordering.order_by(keys, self.r, forward=forward)
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
            .order_by(*ordering.order_by(page_keys, page, forward=forward))
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
            .where(*conds, r.c.deleted.is_(False), criteria.visible(self.caller, r))
            .distinct()
        )
