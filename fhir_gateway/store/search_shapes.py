"""Search statements built once per shape, then run with their values bound.

The searches that come again and again (a partner polling ``Task?owner=…&status=requested``, the
engines' ``Task?focus=…`` and ``CarePlan?subject=…&status=…``) differ only in their values.
Building their statement cost more than running it: SQLAlchemy objects, the row policy's large
condition, and SQLAlchemy's cache key of the new statement before its compiled-SQL cache can hit.

A *shape* is what the SQL of a search depends on beyond its values: the resource type, and per
criterion the parameter, its type and which parts of each value are given (a token's system and
code, a reference's type, id or URL). ``template`` turns a plan of a simple shape (one type;
token and reference parameters without modifiers) into the same plan with each value replaced
by a named bind parameter, and the values to bind. ``store.search`` builds its usual statement
from that template plan, so the SQL is the one it would have built, and ``Statements`` keeps the
statement per shape, caller and row policy: the same statement object each time, whose cache key
SQLAlchemy has memoised, so its compiled SQL is found without building or traversing anything.
Every other search takes the general path.

``Statements.prepared`` goes one step further for the quick searches run on the SQLite driver's
own connection (``store.search.quick_search``): the statement's SQL and positional arguments,
compiled and expanded once (the row policy's lists are constants of the statement), so that a
search binds its values into a list and hands it to the driver.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect, Select, bindparam

from fhir_gateway.context import Caller
from fhir_gateway.search import plan as p
from fhir_gateway.store import visibility
from fhir_gateway.store.prebuilt import Prebuilt

__all__ = ["Template", "template", "Statements", "Prepared"]

_SIMPLE_TYPES = ("token", "reference")
_RESOURCE_COLUMNS = ("_id", "_lastUpdated")  # tested on the resources row, not an index table


@dataclass(frozen=True, slots=True)
class Template:
    key: Hashable  # the shape: equal for every search its statement serves
    values: dict[str, Any]  # what to bind
    source: p.SearchPlan  # the search it was taken from

    def plan(self) -> p.SearchPlan:
        """The search's plan with a bind parameter in place of each value bound (built only
        when the statement of the shape is built)."""
        plan = self.source
        res_type = plan.types[0]
        criteria = []
        for i, criterion in enumerate(plan.criteria):
            test = dict(criterion.by_type)[res_type]
            assert isinstance(test, p.Test)
            bound = tuple(_bound(val, f"c{i}v{j}") for j, val in enumerate(test.values))
            test = dataclasses.replace(test, values=bound)
            criteria.append(dataclasses.replace(criterion, by_type=((res_type, test),)))
        cursor = plan.cursor
        if cursor is not None:
            cursor = p.Cursor(cursor.forward, (bindparam("after_type"), bindparam("after_id")))
        return dataclasses.replace(plan, criteria=tuple(criteria), cursor=cursor)


def template(plan: p.SearchPlan) -> Template | None:
    """The plan's shape and values, or None when the search is not of a simple shape.

    The shape holds the page size and the paging direction; a page after the first binds the
    (res_type, res_id) it starts after. Sorted searches are not simple (their keyset values)."""
    if len(plan.types) != 1 or plan.sort:
        return None
    res_type = plan.types[0]
    values: dict[str, Any] = {}
    shape: list[Hashable] = [res_type, plan.count, plan.cursor and plan.cursor.forward]
    for i, criterion in enumerate(plan.criteria):
        node = dict(criterion.by_type).get(res_type)
        if not _simple(node):
            return None
        assert isinstance(node, p.Test)
        kinds = []
        for j, val in enumerate(node.values):
            parts = _parts(val)
            kinds.append(tuple(given is None for _, given in parts) + _flags(val))
            values.update((f"c{i}v{j}_{part}", given) for part, given in parts if given is not None)
        shape.append((node.param.code, node.param.type, tuple(kinds)))
    if plan.cursor is not None:  # unsorted: its keys are the (res_type, res_id) of its row
        values["after_type"], values["after_id"] = plan.cursor.keys[-2:]
    return Template(tuple(shape), values, plan)


def _simple(node: p.Node | None) -> bool:
    return (
        isinstance(node, p.Test)
        and node.modifier is None
        and node.param.type in _SIMPLE_TYPES
        and node.param.code not in _RESOURCE_COLUMNS
        and bool(node.values)
        and all(isinstance(val, p.TokenValue | p.ReferenceValue) for val in node.values)
    )


def _parts(val: p.Value) -> list[tuple[str, Any]]:
    """The parts of a value its test compares (store.search), each named; None: not given."""
    if isinstance(val, p.TokenValue):
        return [("system", val.system), ("code", val.code)]
    assert isinstance(val, p.ReferenceValue)
    # One type is tested (target_type = …); none or several are not.
    one_type = val.types[0] if len(val.types) == 1 else None
    return [("type", one_type), ("id", val.id), ("url", val.url)]


def _flags(val: p.Value) -> tuple[bool, ...]:
    """What else of a value decides its test: whether a token's system was given (``|code``
    tests for no system), whether a reference names several types."""
    if isinstance(val, p.TokenValue):
        return (val.system_given,)
    assert isinstance(val, p.ReferenceValue)
    return (len(val.types) > 1,)


def _bound(val: p.Value, name: str) -> p.Value:
    """``val`` with a bind parameter in place of each part given (absent parts stay None: an
    absent part is part of the shape, IS NULL or no test at all)."""
    # Typed as the text it stands for: the statement compares it where the text would be.
    bound: dict[str, Any] = {
        part: None if given is None else bindparam(f"{name}_{part}") for part, given in _parts(val)
    }
    if isinstance(val, p.TokenValue):
        return p.TokenValue(bound["system"], bound["code"], val.system_given)
    assert isinstance(val, p.ReferenceValue)
    types = (bound["type"],) if bound["type"] is not None else val.types
    return p.ReferenceValue(types, bound["id"], bound["url"])


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement as the driver runs it: its SQL, and its positional arguments with a slot for
    each value a search binds (``Template.values``)."""

    sql: str
    constants: tuple[Any, ...]  # the arguments, None in the slots
    slots: tuple[tuple[int, str], ...]  # (position, name of the value bound there)

    def arguments(self, values: dict[str, Any]) -> list[Any]:
        args = list(self.constants)
        for position, name in self.slots:
            args[position] = values[name]
        return args


def _prepare(statement: Select[Any], values: dict[str, Any], dialect: Dialect) -> Prepared | None:
    """None when a value bound would need converting for the driver (none of a simple shape
    does: its values are texts) or the dialect does not take positional arguments."""
    compiled = statement.compile(dialect=dialect)
    if not compiled.positional:
        return None
    state = compiled.construct_expanded_state(values)
    constants: list[Any] = []
    slots: list[tuple[int, str]] = []
    for position, name in enumerate(state.positiontup or ()):
        convert = state.processors.get(name)
        if name in values:
            if convert is not None:
                return None
            slots.append((position, name))
            constants.append(None)
        else:
            value = state.parameters[name]
            constants.append(convert(value) if convert is not None else value)
    return Prepared(state.statement, tuple(constants), tuple(slots))


class Statements:
    """Statements by shape (and whatever else the caller's key adds), the caller and the row
    policy they were built under; the least recently used go past ``size``."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._built: OrderedDict[Hashable, Select[Any]] = OrderedDict()
        # By statement, gone with it; for one dialect's driver (SQLite's, store.search).
        self._prepared: weakref.WeakKeyDictionary[Select[Any], Prepared | None] = (
            weakref.WeakKeyDictionary()
        )
        self._prebuilt: weakref.WeakKeyDictionary[Select[Any], Prebuilt | None] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def prepared(
        self, statement: Select[Any], values: dict[str, Any], dialect: Dialect
    ) -> Prepared | None:
        """``statement`` (one that ``get`` returned) prepared for ``dialect``'s driver, once; None:
        it cannot be (``_prepare``)."""
        with self._lock:
            if statement in self._prepared:
                return self._prepared[statement]
        found = _prepare(statement, values, dialect)
        with self._lock:
            self._prepared[statement] = found
        return found

    def prebuilt(self, statement: Select[Any], dialect: Dialect) -> Prebuilt | None:
        """``statement`` (one that ``get`` returned) as a ``Prebuilt``, compiled once; None: it
        cannot be (an expanding list)."""
        with self._lock:
            if statement in self._prebuilt:
                return self._prebuilt[statement]
        found: Prebuilt | None = Prebuilt(statement)
        try:
            found.compiled(dialect)  # type: ignore[union-attr]
        except ValueError:
            found = None
        with self._lock:
            self._prebuilt[statement] = found
        return found

    def get(self, key: Hashable, caller: Caller, build: Callable[[], Select[Any]]) -> Select[Any]:
        # The caller's network address is for the audit trail, not for which rows it sees.
        full = (key, dataclasses.replace(caller, address=None), visibility.current())
        with self._lock:
            found = self._built.get(full)
            if found is not None:
                self._built.move_to_end(full)
                return found
        built = build()
        with self._lock:
            self._built[full] = built
            while len(self._built) > self.size:
                self._built.popitem(last=False)
        return built

    def clear(self) -> None:
        with self._lock:
            self._built.clear()
            self._prepared.clear()
