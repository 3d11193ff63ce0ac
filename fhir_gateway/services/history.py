"""history at instance, type and system level, as a ``history`` Bundle.

Paging is stable: the first page fixes a ``_before`` instant and later pages never see versions
written after it, since history is append-only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.context import Caller
from fhir_gateway.errors import Forbidden, InvalidRequest
from fhir_gateway.fhir.numbers import whole_number
from fhir_gateway.settings import Settings
from fhir_gateway.store import repository as repo
from fhir_gateway.store import visibility
from fhir_gateway.store.budget import Budget
from fhir_gateway.store.repository import StoredResource

__all__ = ["history_bundle", "parse_instant"]

_STATUS = {"POST": "201 Created", "PUT": "200 OK", "PATCH": "200 OK", "DELETE": "204 No Content"}


def parse_instant(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(
            f"{name} must be an instant like 2026-01-01T00:00:00Z, not {value!r}"
        ) from exc
    if parsed.tzinfo is None:
        raise InvalidRequest(f"{name} needs a time zone offset: {value!r}")
    return parsed


def _int(params: dict[str, str], name: str, default: int, maximum: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    number = whole_number(value, ceiling=maximum)
    if number is None:
        raise InvalidRequest(f"{name} must be a whole number, not {value[:20]!r}")
    return number


def history_bundle(
    session: Session,
    query: list[tuple[str, str]],
    *,
    caller: Caller,
    base_url: str,
    settings: Settings,
    res_type: str | None = None,
    res_id: str | None = None,
) -> bytes:
    if res_type and not caller.can(res_type, "r"):
        raise Forbidden(f"Not permitted: history of {res_type}")
    params = dict(query)
    count = _int(params, "_count", settings.default_page_size, settings.max_page_size)
    offset = _int(params, "_offset", 0, 10**9)
    since = parse_instant(params["_since"], "_since") if "_since" in params else None
    before = parse_instant(params["_before"], "_before") if "_before" in params else clock.now()
    policy = visibility.current()
    with Budget(settings.search_timeout).applied(session):  # its total counts every version
        versions, total = repo.history(
            session,
            res_type=res_type,
            res_id=res_id,
            since=since,
            before=before,
            count=count,
            offset=offset,
            visible=lambda r: policy.where(caller, r),
        )
    path = "/".join(p for p in (base_url, res_type, res_id, "_history") if p)
    paging = {k: v for k, v in params.items() if k in ("_since", "_count")}
    paging["_before"] = clock.to_instant(before)

    def link(relation: str, at: int) -> dict[str, str]:
        return {"relation": relation, "url": f"{path}?{urlencode({**paging, '_offset': str(at)})}"}

    links = [link("self", offset)]
    if offset + count < total:
        links.append(link("next", offset + count))
    if offset > 0:
        links.append(link("previous", max(0, offset - count)))
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "history",
        "total": total,
        "link": links,
        "entry": [
            e for e in (_entry(session, caller, v, base_url) for v in versions) if e is not None
        ],
    }
    return orjson.dumps(bundle)


def _entry(
    session: Session, caller: Caller, version: StoredResource, base_url: str
) -> dict[str, Any] | None:
    url = version.relative
    entry: dict[str, Any] = {"fullUrl": f"{base_url}/{url}"}
    if not version.deleted:
        served = visibility.current().serve_version(session, caller, version)
        if served is None:
            return None  # a version this caller may not receive (the count stays an upper bound)
        entry["resource"] = served
    method = version.method if version.method in _STATUS else "PUT"
    entry["request"] = {"method": method, "url": url if method != "POST" else version.res_type}
    entry["response"] = {
        "status": _STATUS[method],
        "etag": f'W/"{version.version_id}"',
        "lastModified": clock.to_instant(version.last_updated),
    }
    return entry
