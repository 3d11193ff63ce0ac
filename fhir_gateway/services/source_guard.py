"""Replays never overwrite newer data.

The intake remembers, per resource, the newest message time it applied (the ``source_times``
side table: EVN-2, else MSH-7, for HL7 v2; Bundle.timestamp for FHIR messages). Before a Bundle
is applied, each update entry (PATCH/PUT) whose target already holds a newer time is dropped: an
older message may still create what does not exist, never change what a newer one wrote.
Stored resources stay untouched (no tag or extension to strip on the way out).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.context import SYSTEM
from fhir_gateway.errors import GatewayError
from fhir_gateway.fhir.references import Reference
from fhir_gateway.services.bundles import parse_entry_url
from fhir_gateway.services.resources import criteria_key, search_params
from fhir_gateway.store import source_times
from fhir_gateway.store.token_matches import match_ids_many

__all__ = ["drop_stale", "record", "written"]

_NOT_TRACKED = frozenset({"MessageHeader", "Provenance"})  # one per message, never updated


def drop_stale(
    session: Session,
    bundle: dict[str, Any],
    when: datetime | None,
    matches: dict[tuple[str, str], list[str]] | None = None,
    keys: dict[str, str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The Bundle without the updates older than the stored data, and a note for each.
    ``matches`` gets what each conditional update's criteria found (as the system), by (type,
    sorted criteria): the Bundle's ifNoneExist with the same criteria need not search again.
    ``keys`` gets each query's sorted criteria (``criteria_key``), for the Bundle to reuse."""
    if when is None:
        return bundle, []
    kept, notes = [], []
    entries = bundle.get("entry") or []
    found = matches if matches is not None else {}
    keyed = keys if keys is not None else {}
    times: dict[tuple[str, str], datetime | None] = {}  # read with the matches
    _search_all(session, entries, found, times, keyed)
    targets = [_update_target(entry, found, keyed) for entry in entries]
    times.update(source_times.get_many(session, [t for t in targets if t and t not in times]))
    for entry, target in zip(entries, targets, strict=True):
        stored = times.get(target) if target else None
        if target is not None and stored is not None and stored > when:
            notes.append(
                f"{target[0]}/{target[1]} holds data from {stored.isoformat()}, newer than "
                f"this message ({when.isoformat()}): not updated"
            )
            continue
        kept.append(entry)
    return {**bundle, "entry": kept}, notes


def _search_all(
    session: Session,
    entries: list[dict[str, Any]],
    found: dict[tuple[str, str], list[str]],
    times: dict[tuple[str, str], datetime | None],
    keys: dict[str, str],
) -> None:
    """Search, in one go, the criteria of the conditional updates and of the conditional creates
    (the same keys, mostly), except those naming entries of this Bundle (resolved later); with
    the source time of what they find."""
    full_urls = [str(e["fullUrl"]) for e in entries if e.get("fullUrl")]
    queries: dict[tuple[str, str], tuple[str, list[tuple[str, str]]]] = {}
    for entry in entries:
        criteria = _criteria(entry)
        if criteria is None or any(url in criteria[1] for url in full_urls):
            continue
        res_type, query = criteria
        try:
            params = search_params(query)
        except GatewayError:
            continue
        queries.setdefault((res_type, _key(query, keys)), (res_type, params))
    try:
        ids = match_ids_many(
            session, list(queries.values()), caller=SYSTEM, limit=2, source_times=times
        )
    except GatewayError:
        return _search_each(session, queries, found)
    found.update(zip(queries, (list(i) for i in ids), strict=True))


def _search_each(
    session: Session,
    queries: dict[tuple[str, str], tuple[str, list[tuple[str, str]]]],
    found: dict[tuple[str, str], list[str]],
) -> None:
    """One criteria the search refuses: the others searched alone (the transaction reports it)."""
    for key, (res_type, params) in queries.items():
        try:
            found[key] = match_ids_many(session, [(res_type, params)], caller=SYSTEM, limit=2)[0]
        except GatewayError:
            continue


def _criteria(entry: dict[str, Any]) -> tuple[str, str] | None:
    """(type, query) of a conditional update (``PATCH/PUT Type?q``) or create (ifNoneExist)."""
    request = entry.get("request") or {}
    method = request.get("method")
    if method == "POST" and request.get("ifNoneExist"):
        res_type, _, _, _ = parse_entry_url(str(request.get("url") or ""), "")
        query = str(request["ifNoneExist"])  # as the transaction keys it
    elif method in ("PATCH", "PUT"):
        res_type, _, _, query = parse_entry_url(str(request.get("url") or ""), "")
    else:
        return None
    if not res_type or res_type in _NOT_TRACKED or not query:
        return None
    return res_type, query


def _key(query: str, keys: dict[str, str]) -> str:
    found = keys.get(query)
    if found is None:
        found = keys[query] = criteria_key(query)
    return found


def _update_target(
    entry: dict[str, Any], found: dict[tuple[str, str], list[str]], keys: dict[str, str]
) -> tuple[str, str] | None:
    request = entry.get("request") or {}
    if request.get("method") not in ("PATCH", "PUT"):
        return None
    res_type, res_id, _, query = parse_entry_url(str(request.get("url") or ""), "")
    if not res_type or res_type in _NOT_TRACKED:
        return None
    if res_id and not query:
        return res_type, res_id
    if "urn:uuid:" in query:
        return None  # criteria naming entries of this Bundle: the target is new or resolved later
    try:
        ids = found.get((res_type, _key(query, keys)))
    except GatewayError:
        return None
    return (res_type, ids[0]) if ids is not None and len(ids) == 1 else None


def written(response: dict[str, Any]) -> list[tuple[str, str]]:
    """(type, id) of each resource a transaction-response says was written or matched."""
    out = []
    for entry in response.get("entry") or []:
        location = (entry.get("response") or {}).get("location") or ""
        ref = Reference.parse(location)
        if ref is not None and ref.type is not None and ref.type not in _NOT_TRACKED:
            out.append((ref.type, ref.id))
    return out


def record(
    session: Session, targets: list[tuple[str, str]], when: datetime | None, message_id: int | None
) -> None:
    if when is not None:
        source_times.advance_many(session, targets, when, message_id)  # each once, sorted there
