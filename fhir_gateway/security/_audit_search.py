"""The audit trail read as FHIR: ``GET /AuditEvent?…`` and ``GET /AuditEvent/ID`` from its rows.

The parameters are those the trail is searched by (``SEARCH_PARAMS``, which the
CapabilityStatement lists): ``_id``, ``date`` (the time recorded) and ``_lastUpdated`` (the same,
but a stored AuditEvent's own; both eq, ge, gt, le, lt), ``_tag``, ``_security`` and ``_profile`` (the gateway's own events carry none;
a stored AuditEvent's meta, from ``audit_log_terms``),
``patient``, ``agent`` (the caller's organisation, or a disclosure's recipient), ``altid`` (the
client), ``action``, ``subtype`` and ``outcome`` (``system|`` optional), ``entity`` (the resource
a request named, or a disclosure's consent; a stored AuditEvent is found by each agent, entity
and patient it names), with ``_count``, ``_offset`` and ``_sort`` (``date``
or ``-date``, the default). Comma-separated values are alternatives. Any other parameter is
refused: ignoring one would show more of the trail than was asked for. Newest first.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.context import Caller
from fhir_gateway.errors import Forbidden, InvalidSearch, NotFound
from fhir_gateway.search.plan import Limits
from fhir_gateway.security._audit_rows import event_of
from fhir_gateway.settings import Settings
from fhir_gateway.store.budget import Budget
from fhir_gateway.store.search import limits_of
from fhir_gateway.store.security_tables import audit_log, audit_log_terms

__all__ = ["SEARCH_PARAMS", "search_events", "read_event"]

_C = audit_log.c
_COLUMNS = {
    "_id": _C.id,
    "patient": _C.patient,
    "agent": _C.agent,
    "altid": _C.client_id,
    "action": _C.action,
    "subtype": _C.subtype,
    "outcome": _C.outcome,
    "entity": _C.entity,
}
_T = audit_log_terms.c
_TERMS = ("_tag", "_security", "_profile")  # only ever in audit_log_terms
# name → FHIR search parameter type: every parameter the trail search answers to
SEARCH_PARAMS = {
    **{name: "reference" for name in ("patient", "agent", "entity")},
    **{name: "token" for name in ("_id", "altid", "action", "subtype", "outcome")},
    **{name: "token" for name in ("_tag", "_security")},
    "_profile": "uri",
    "date": "date",
    "_lastUpdated": "date",
}
_REFERENCES = {"patient": "Patient", "agent": "Organization", "entity": None}
_IGNORED = {"_format", "_pretty", "_total", "_elements"}
_PREFIXES = ("eq", "ge", "gt", "le", "lt")
_MAX_OFFSET = 2**63 - 1  # what SQL OFFSET takes
_DAY, _SECOND, _MICRO = timedelta(days=1), timedelta(seconds=1), timedelta(microseconds=1)


def read_event(session: Session, res_id: str, caller: Caller) -> dict[str, Any] | None:
    """The AuditEvent of row ``res_id``, or None when there is no such row."""
    if not caller.can("AuditEvent", "r"):
        raise Forbidden("Not permitted: r on AuditEvent")
    row = session.execute(select(audit_log).where(_C.id == res_id)).first()
    return event_of(row) if row is not None else None


def read_event_or_404(session: Session, res_id: str, caller: Caller) -> dict[str, Any]:
    event = read_event(session, res_id, caller)
    if event is None:
        raise NotFound(f"AuditEvent/{res_id} is not known")
    return event


def search_events(
    session: Session,
    params: list[tuple[str, str]],
    *,
    caller: Caller,
    base_url: str,
    settings: Settings,
    budget: Budget | None = None,
) -> bytes:
    """The searchset Bundle of the trail's rows that match ``params``, within the search limits
    and time budget every other search has."""
    if not caller.can("AuditEvent", "s"):
        raise Forbidden("Not permitted: search on AuditEvent")
    _within_limits(params, limits_of(settings))
    count, offset, newest_first = settings.default_page_size, 0, True
    query: Select[Any] = select(audit_log)
    for name, value in params:
        if name == "_count":
            count = min(_whole(name, value), settings.max_page_size)
        elif name == "_offset":
            offset = _whole(name, value)
            if offset > _MAX_OFFSET:
                raise InvalidSearch(f"_offset must be at most {_MAX_OFFSET}")
        elif name == "_sort":
            if value not in ("date", "-date"):
                raise InvalidSearch("AuditEvent sorts by date or -date only")
            newest_first = value == "-date"
        elif name == "date":
            query = query.where(or_(*(_date(_C.recorded, v) for v in value.split(","))))
        elif name == "_lastUpdated":  # a stored event's own; the others', when recorded
            updated = func.coalesce(_C.updated, _C.recorded)
            query = query.where(or_(*(_date(updated, v) for v in value.split(","))))
        elif name in _TERMS:
            query = query.where(_C.id.in_(_terms(name, value.split(","))))
        elif name in _COLUMNS:
            query = query.where(_column(name, [_value(name, v) for v in value.split(",")]))
        elif name not in _IGNORED:
            raise InvalidSearch(f"AuditEvent cannot be searched by '{name[:40]}'")
    order = (_C.recorded.desc(), _C.id.desc()) if newest_first else (_C.recorded, _C.id)
    budget = budget or Budget(settings.search_timeout)
    with budget.applied(session):
        rows = session.execute(query.order_by(*order).offset(offset).limit(count + 1)).all()
    return _bundle(list(rows[:count]), len(rows) > count, params, offset, count, base_url)


def _column(name: str, values: list[str]) -> ColumnElement[bool]:
    found = _COLUMNS[name].in_(values)
    if name not in _REFERENCES:
        return found
    terms = select(_T.id).where(_T.name == name, _T.value.in_(values))
    return or_(found, _C.id.in_(terms))


def _terms(name: str, values: list[str]) -> Select[Any]:
    """The rows whose stored event has one of ``values`` in its meta: a token as ``code``,
    ``system|code``, ``|code`` (no system) or ``system|``; a profile as its URL."""
    matches = []
    for value in values:
        if name == "_profile" or "|" not in value:
            matches.append(_T.value == value)
            continue
        system, code = value.split("|", 1)
        matches.append((_T.system == system) & (_T.value == code) if code else _T.system == system)
    return select(_T.id).where(_T.name == name, or_(*matches))


def _within_limits(params: list[tuple[str, str]], limits: Limits) -> None:
    """The shared search limits (parameters, repeats of one, values of one)."""
    limits.check(len(params), "search_max_parameters", "Search parameters", None)
    repeats = Counter(name for name, _ in params)
    for name, times in repeats.items():
        limits.check(times, "search_max_repeats", f"Repeats of {name[:40]}", name[:40])
    for name, value in params:
        values = value.count(",") + 1
        limits.check(values, "search_max_values", f"Values of {name[:40]}", name[:40])


def _whole(name: str, value: str) -> int:
    if not value.isdigit():
        raise InvalidSearch(f"{name} must be a whole number")
    return int(value)


def _value(name: str, value: str) -> str:
    if name in ("subtype", "outcome", "action") and "|" in value:
        value = value.rsplit("|", 1)[1]  # the code: these columns hold codes of one system each
    kind = _REFERENCES.get(name, "")
    if kind and "/" not in value:
        value = f"{kind}/{value}"
    return value


def _date(column: ColumnElement[Any], value: str) -> ColumnElement[bool]:
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    text = value[2:] if value[:2] in _PREFIXES else value
    start, end = _period(text)
    return {
        "eq": (column >= start) & (column < end),
        "ge": column >= start,
        "gt": column >= end,
        "le": column < end,
        "lt": column < start,
    }[prefix]


def _period(text: str) -> tuple[datetime, datetime]:
    """The UTC period a FHIR date names: a year, a month, a day, an instant's second (or its
    fraction of one)."""
    try:
        if len(text) in (4, 7) and text[:4].isdigit():  # YYYY or YYYY-MM
            year, month = int(text[:4]), int(text[5:7]) if len(text) == 7 else 1
            first = datetime(year, month, 1)
            after = (
                datetime(year + 1, 1, 1)
                if len(text) == 4 or month == 12
                else datetime(year, month + 1, 1)
            )
            return first, after
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidSearch(f"date is not a date or an instant: {text[:40]!r}") from exc
    start = clock.to_db(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return start, start + (_DAY if len(text) <= 10 else _MICRO if "." in text else _SECOND)


def _bundle(
    rows: list[Any],
    more: bool,
    params: list[tuple[str, str]],
    offset: int,
    count: int,
    base_url: str,
) -> bytes:
    base = base_url.rstrip("/")
    kept = [(n, v) for n, v in params if n != "_offset"]
    links = [{"relation": "self", "url": f"{base}/AuditEvent?{urlencode(params)}"}]
    if more:
        after = urlencode([*kept, ("_offset", str(offset + count))])
        links.append({"relation": "next", "url": f"{base}/AuditEvent?{after}"})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "meta": {"lastUpdated": clock.to_instant(clock.now())},
        "type": "searchset",
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}/AuditEvent/{row.id}",
                "resource": event_of(row),
                "search": {"mode": "match"},
            }
            for row in rows
        ],
    }
    if not more and not offset:
        bundle["total"] = len(rows)
    return orjson.dumps(bundle)
