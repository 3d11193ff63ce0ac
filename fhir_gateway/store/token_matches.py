"""``match_ids`` of many conditional criteria at once (issue 21: statements per message).

A message's Bundle names each resource by a conditional key, mostly one ``identifier=system|value``
(``ifNoneExist``, ``PATCH Type?identifier=…``). Searched one by one that is a statement per
resource; here every criteria that is a single exact token test, for a caller that no row policy
narrows, is answered from one read of ``idx_token``. Index rows exist only for live resources, so
a row found is a current match, exactly as the search's own subquery finds it. Other criteria (and
restricted callers) are searched as ever, one by one.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.context import Caller
from fhir_gateway.search import plan as p
from fhir_gateway.search import values as v
from fhir_gateway.search.registry import get_registry
from fhir_gateway.store import visibility
from fhir_gateway.store.inbox_tables import source_times as source_times_table
from fhir_gateway.store.prebuilt import Prebuilt
from fhir_gateway.store.search import match_ids
from fhir_gateway.store.tables import idx_token

__all__ = ["match_ids_many"]

# (res_type, param, system or None, code): what one row of idx_token must hold
_TokenKey = tuple[str, str, str | None, str]


def match_ids_many(
    session: Session,
    queries: Sequence[tuple[str, list[tuple[str, str]]]],
    *,
    caller: Caller,
    limit: int | None = None,
    source_times: dict[tuple[str, str], datetime | None] | None = None,
) -> list[list[str]]:
    """``match_ids(session, res_type, params, caller=caller, limit=limit)`` of each query, in order;
    a query the search refuses raises as it would alone. ``source_times``, when given, gets the
    newest message time the intake applied to each resource the index read found (None: none),
    read with it (``store.source_times``; the intake's replay guard)."""
    keys = [_token_key(res_type, params, caller) for res_type, params in queries]
    found = _lookup(session, {k for k in keys if k is not None}, source_times)
    out = []
    for (res_type, params), key in zip(queries, keys, strict=True):
        if key is None:
            out.append(match_ids(session, res_type, params, caller=caller, limit=limit))
        else:
            ids = sorted(found.get(key, ()))
            out.append(ids if limit is None else ids[:limit])
    return out


def _token_key(res_type: str, params: list[tuple[str, str]], caller: Caller) -> _TokenKey | None:
    """The one exact ``system|code`` test the criteria amount to, or None (searched alone)."""
    if visibility.current().restricted(caller):
        return None
    plain = _plain_token_key(res_type, params)
    return _parsed_token_key(res_type, params) if plain is _UNDECIDED else plain


class _Undecided(enum.Enum):
    UNDECIDED = enum.auto()


_UNDECIDED = _Undecided.UNDECIDED


def _plain_token_key(
    res_type: str, params: list[tuple[str, str]]
) -> _TokenKey | None | Literal[_Undecided.UNDECIDED]:
    """The key of the usual criteria, ``identifier=system|value``, read without the search's
    parser (a third of an admission's criteria work): one parameter, no modifier or chain, one
    value with one bar, nothing escaped, nothing cut short. Anything else is _UNDECIDED."""
    if len(params) != 1:
        return _UNDECIDED
    name, value = params[0]
    if not name or name[0] == "_" or ":" in name or "." in name:
        return _UNDECIDED
    if "\\" in value or "," in value or value.count("|") != 1:
        return _UNDECIDED
    system, code = value.split("|")
    if not system or not code or len(system) > v.TOKEN_SYSTEM_LEN or len(code) > v.TOKEN_CODE_LEN:
        return _UNDECIDED
    param = get_registry().get(res_type, name)
    if param is None or param.type != "token" or not param.supported:
        return _UNDECIDED
    return res_type, name, system, code


def _parsed_token_key(res_type: str, params: list[tuple[str, str]]) -> _TokenKey | None:
    criteria = [(n, v) for n, v in params if n not in p.RESULT_PARAMS]
    if len(criteria) != 1:
        return None
    try:
        plan = p.parse(res_type, criteria, strict=True)
    except Exception:  # noqa: BLE001 - searched alone, which raises the search's own error
        return None
    if plan.types != (res_type,) or len(plan.criteria) != 1:
        return None
    node = dict(plan.criteria[0].by_type).get(res_type)
    if not isinstance(node, p.Test) or node.modifier is not None or node.param.type != "token":
        return None
    if node.param.code.startswith("_") or len(node.values) != 1:
        return None
    value = node.values[0]
    if not isinstance(value, p.TokenValue) or value.code is None or not value.system_given:
        return None
    return res_type, node.param.code, value.system, value.code


def _lookup(
    session: Session,
    keys: set[_TokenKey],
    times: dict[tuple[str, str], datetime | None] | None = None,
) -> dict[_TokenKey, set[str]]:
    if not keys:
        return {}
    ordered = sorted(keys, key=lambda k: (k[2] is None, k[0], k[1], k[2] or "", k[3]))
    values: dict[str, str] = {}
    for number, (res_type, param, system, code) in enumerate(ordered):
        values.update({f"t{number}": res_type, f"p{number}": param, f"c{number}": code})
        if system is not None:
            values[f"s{number}"] = system
    with_system = sum(k[2] is not None for k in ordered)
    statement = _rows_of(with_system, len(ordered), times is not None)
    found: dict[_TokenKey, set[str]] = {}
    for row in statement.run(session, values):
        key = (row.res_type, row.param, row.system, row.code)
        if key in keys:
            found.setdefault(key, set()).add(row.res_id)
            if times is not None:
                at = row.source_time
                times[(row.res_type, row.res_id)] = clock.from_db(at) if at else None
    return found


@functools.lru_cache(maxsize=128)
def _rows_of(with_system: int, count: int, with_times: bool) -> Prebuilt:
    """The rows of ``count`` keys, the first ``with_system`` of them with a system, the rest
    without: an OR of exact index lookups (one seek each), built once per such shape; with the
    resource's source time when ``with_times``."""
    t = idx_token
    tests = [
        and_(
            t.c.res_type == bindparam(f"t{n}"),
            t.c.param == bindparam(f"p{n}"),
            t.c.code == bindparam(f"c{n}"),
            t.c.system == bindparam(f"s{n}") if n < with_system else t.c.system.is_(None),
        )
        for n in range(count)
    ]
    columns = select(t.c.res_type, t.c.param, t.c.system, t.c.code, t.c.res_id)
    if not with_times:
        return Prebuilt(columns.where(or_(*tests)))
    times = source_times_table
    joined = t.outerjoin(
        times, and_(times.c.res_type == t.c.res_type, times.c.res_id == t.c.res_id)
    )
    return Prebuilt(columns.add_columns(times.c.source_time).select_from(joined).where(or_(*tests)))
