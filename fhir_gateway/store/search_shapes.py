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
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam

from fhir_gateway.context import Caller
from fhir_gateway.search import plan as p
from fhir_gateway.store import visibility

__all__ = ["Template", "template", "Statements"]

_SIMPLE_TYPES = ("token", "reference")
_RESOURCE_COLUMNS = ("_id", "_lastUpdated")  # tested on the resources row, not an index table


@dataclass(frozen=True, slots=True)
class Template:
    key: Hashable  # the shape: equal for every search its statement serves
    plan: p.SearchPlan  # the plan with bind parameters for its values
    values: dict[str, Any]  # what to bind


def template(plan: p.SearchPlan) -> Template | None:
    """The plan's shape and values, or None when the search is not of a simple shape.

    The shape holds the page size and the paging direction; a page after the first binds the
    (res_type, res_id) it starts after. Sorted searches are not simple (their keyset values)."""
    if len(plan.types) != 1 or plan.sort:
        return None
    res_type = plan.types[0]
    values: dict[str, Any] = {}
    criteria: list[p.Criterion] = []
    shape: list[Hashable] = [res_type, plan.count, plan.cursor and plan.cursor.forward]
    for i, criterion in enumerate(plan.criteria):
        node = dict(criterion.by_type).get(res_type)
        if not _simple(node):
            return None
        assert isinstance(node, p.Test)
        bound = tuple(_bound(val, f"c{i}v{j}", values) for j, val in enumerate(node.values))
        shape.append((node.param.code, node.param.type, tuple(key for key, _ in bound)))
        test = dataclasses.replace(node, values=tuple(val for _, val in bound))
        criteria.append(dataclasses.replace(criterion, by_type=((res_type, test),)))
    cursor = plan.cursor
    if cursor is not None:  # unsorted: its keys are the (res_type, res_id) of the row it is at
        values["after_type"], values["after_id"] = cursor.keys[-2:]
        cursor = p.Cursor(cursor.forward, (bindparam("after_type"), bindparam("after_id")))
    shaped = dataclasses.replace(plan, criteria=tuple(criteria), cursor=cursor)
    return Template(tuple(shape), shaped, values)


def _simple(node: p.Node | None) -> bool:
    return (
        isinstance(node, p.Test)
        and node.modifier is None
        and node.param.type in _SIMPLE_TYPES
        and node.param.code not in _RESOURCE_COLUMNS
        and bool(node.values)
        and all(isinstance(val, p.TokenValue | p.ReferenceValue) for val in node.values)
    )


def _bound(val: p.Value, name: str, values: dict[str, Any]) -> tuple[Hashable, Any]:
    """(the value's part of the shape, the value with a bind parameter for each part given)."""

    def bind(part: str, given: Any) -> Any:
        if given is None:  # absent is part of the shape (IS NULL, or no test at all)
            return None
        values[f"{name}_{part}"] = given
        return bindparam(f"{name}_{part}")

    if isinstance(val, p.TokenValue):
        key = ("token", val.system is None, val.code is None, val.system_given)
        return key, p.TokenValue(
            bind("system", val.system), bind("code", val.code), val.system_given
        )
    assert isinstance(val, p.ReferenceValue)
    # One type is tested (target_type = …); none or several are not (store.search).
    types = (bind("type", val.types[0]),) if len(val.types) == 1 else ()
    key = ("reference", len(val.types) == 1, val.id is None, val.url is None)
    return key, p.ReferenceValue(types, bind("id", val.id), bind("url", val.url))


class Statements:
    """Statements by shape (and whatever else the caller's key adds), the caller and the row
    policy they were built under; the least recently used go past ``size``."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._built: OrderedDict[Hashable, Select[Any]] = OrderedDict()
        self._lock = threading.Lock()

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
