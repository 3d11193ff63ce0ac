"""Assemble the ``searchset`` Bundle of a search from the rows the store found. Pure: no SQL.

A row is ``(res_type, res_id, body, *sort key values)``. Entries are the stored JSON text, embedded
without parsing (``orjson.Fragment``), unless the caller gets a redacted copy or the plan shapes
the resource (``_summary``, ``_elements``). The paging links carry a cursor made of the sort key
values and the (res_type, res_id) of the first or last row shown; ``store/search.py`` seeks past it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from fhir_gateway import clock
from fhir_gateway.errors import Issue
from fhir_gateway.search import plan as p
from fhir_gateway.search.shape import shape_resource

__all__ = ["Page", "Redact", "searchset"]

Redact = Callable[[dict[str, Any]], dict[str, Any]]  # the copy of a resource a caller may see


@dataclass(frozen=True, slots=True)
class Page:
    """The rows of one page, whether rows exist before and after it, and the included rows."""

    rows: Sequence[Any]
    more_before: bool
    more_after: bool
    included: Sequence[Any] = ()


def searchset(
    plan: p.SearchPlan,
    page: Page | None,
    *,
    total: int | None,
    base_url: str,
    resource_type: str | None,
    redact: Redact | None = None,
) -> bytes:
    """The complete ``searchset`` Bundle, as JSON bytes; ``page`` is None for a count only."""
    out: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": clock.to_instant(clock.now())},
        "type": "searchset",
    }
    links = _Links(plan, base_url, resource_type)
    entries: list[dict[str, Any]] = []
    link_list = [{"relation": "self", "url": links.url(plan.params, plan.cursor)}]
    if total is not None:
        out["total"] = total
    if page is not None:
        link_list += links.paging(page)
        entries = [_entry(plan, base_url, row, "match", redact) for row in page.rows]
        entries += [_entry(plan, base_url, row, "include", redact) for row in page.included]
    if plan.warnings:
        entries.append(_outcome_entry(plan.warnings))
    out["link"] = link_list
    if entries:
        out["entry"] = entries
    return orjson.dumps(out)


class _Links:
    def __init__(self, plan: p.SearchPlan, base_url: str, resource_type: str | None) -> None:
        self.plan = plan
        self.base_url = base_url
        self.resource_type = resource_type

    def paging(self, page: Page) -> list[dict[str, str]]:
        links = []
        params = self.plan.params
        rows = page.rows
        if self.plan.cursor is not None:
            links.append({"relation": "first", "url": self.url(params, None)})
        if page.more_before and rows:
            links.append(
                {"relation": "previous", "url": self.url(params, self.cursor_of(rows[0], False))}
            )
        if page.more_after and rows:
            links.append(
                {"relation": "next", "url": self.url(params, self.cursor_of(rows[-1], True))}
            )
        return links

    def cursor_of(self, row: Any, forward: bool) -> p.Cursor:
        n = len(self.plan.sort)
        values = tuple(row[3 + i] for i in range(n))
        return p.Cursor(forward, (*values, row[0], row[1]))

    def url(self, params: Iterable[tuple[str, str]], cursor: p.Cursor | None) -> str:
        pairs = list(params)
        if cursor is not None:
            pairs.append(("_cursor", p.encode_cursor(cursor)))
        path = f"{self.base_url}/{self.resource_type}" if self.resource_type else self.base_url
        query = urlencode(pairs, safe=":,|$/")
        return f"{path}?{query}" if query else path


def _entry(
    plan: p.SearchPlan, base_url: str, row: Any, mode: str, redact: Redact | None
) -> dict[str, Any]:
    res_type, res_id, body = row[0], row[1], row[2]
    if not isinstance(body, str | bytes):
        body = orjson.dumps(body)
    if redact is not None:  # this caller gets its own copy (redacted, obligations)
        body = orjson.dumps(redact(orjson.loads(body)))
    if plan.summary or (plan.elements and mode == "match"):
        resource: Any = shape_resource(orjson.loads(body), plan.summary, plan.elements)
    else:
        resource = orjson.Fragment(body)
    return {
        "fullUrl": f"{base_url}/{res_type}/{res_id}",
        "resource": resource,
        "search": {"mode": mode},
    }


def _outcome_entry(warnings: Iterable[str]) -> dict[str, Any]:
    issues = [Issue(w, code="not-supported", severity="warning").to_fhir() for w in warnings]
    return {
        "fullUrl": f"urn:uuid:{uuid.uuid4()}",
        "resource": {"resourceType": "OperationOutcome", "issue": issues},
        "search": {"mode": "outcome"},
    }
