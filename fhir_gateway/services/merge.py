"""A40 merge, completed: the surviving Patient keeps everything and is found by either identifier.

The HL7 adapter links the two Patients (``replaces`` / ``replaced-by``, the old one inactive).
Here, in the same transaction:
- the old Patient's identifiers move to the survivor (``use: old``), so a search or a later
  conditional write by the old identifier finds the survivor, and only it;
- every resource referring to the old Patient is re-pointed at the survivor (Provenance stays
  as history);
- re-applying a merge already done (a replay) leaves the old Patient alone.
Because later patches may replace a system's identifiers, the survivor's ``use: old``
identifiers are restored after every Bundle that touches it.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
from sqlalchemy.orm import Session

from fhir_gateway.context import SYSTEM
from fhir_gateway.fhir.references import Reference
from fhir_gateway.services import resources as svc
from fhir_gateway.store import read_ahead
from fhir_gateway.store import repository as repo
from fhir_gateway.store.referrers import referencing
from fhir_gateway.store.search import match_ids

__all__ = ["prepare", "complete"]

_KEEP_REFERENCES = frozenset({"Provenance"})


def _links(patient: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [link for link in patient.get("link") or [] if link.get("type") == kind]


def _same_identifier(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (a.get("system"), a.get("value")) == (b.get("system"), b.get("value"))


# --- before the Bundle: a merge already done is not redone --------------------------------------


def prepare(session: Session, bundle: dict[str, Any]) -> dict[str, Any]:
    done: dict[str, str] = {}  # criteria of an old Patient → its id, where the merge is done
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") or {}
        request = entry.get("request") or {}
        if (
            resource.get("resourceType") == "Patient"
            and request.get("method") == "POST"
            and _links(resource, "replaced-by")
        ):
            old_id = _merged_away(session, request.get("ifNoneExist") or "")
            if old_id:
                done[request["ifNoneExist"]] = old_id
    if not done:
        return bundle
    entries = []
    for entry in bundle["entry"]:
        request = entry.get("request") or {}
        criteria = request.get("ifNoneExist") if request.get("method") == "POST" else None
        if criteria in done:
            entry = {**entry, "request": {**request, "ifNoneExist": f"_id={done[criteria]}"}}
        elif request.get("method") == "PATCH" and request.get("url", "").partition("?")[2] in done:
            continue  # the old Patient's patch: inactive and linked already
        entries.append(entry)
    return {**bundle, "entry": entries}


def _merged_away(session: Session, criteria: str) -> str | None:
    """The old Patient's id when ``criteria`` (its identifier) now finds the survivor."""
    params = svc.search_params(criteria)
    if len(params) != 1 or params[0][0] != "identifier":
        return None
    system, _, value = params[0][1].rpartition("|")
    ids = match_ids(session, "Patient", params, caller=SYSTEM, limit=2)
    survivor = repo.read(session, "Patient", ids[0]) if len(ids) == 1 else None
    if survivor is None:
        return None
    for link in _links(survivor.content, "replaces"):
        other = link.get("other") or {}
        if _same_identifier(other.get("identifier") or {}, {"system": system, "value": value}):
            ref = other.get("reference") or ""
            return Reference.id_of(ref, "Patient")
    return None


# --- after the Bundle ---------------------------------------------------------------------------


def complete(
    session: Session,
    written: list[tuple[str, str]],
    bundle: dict[str, Any],
    response: dict[str, Any],
) -> list[str]:
    """Complete the merges of the Patients the Bundle wrote (``written``, as its ``response``
    says), each read again; when no Patient entry carries a link, not those that had none
    before it (created by it, or read ahead without one): nothing to merge or restore."""
    notes: list[str] = []
    unlinked = set() if _carries_links(bundle) else _unlinked_patients(session, response)
    for res_type, res_id in dict.fromkeys(written):
        if res_type != "Patient" or res_id in unlinked:
            continue
        survivor = repo.read(session, "Patient", res_id)
        if survivor is None or survivor.deleted:
            continue
        for link in _links(survivor.content, "replaces"):
            other_id = Reference.id_of((link.get("other") or {}).get("reference"), "Patient")
            if other_id is not None:
                notes += _merge(session, res_id, other_id, link["other"].get("identifier"))
    return notes


def _carries_links(bundle: dict[str, Any]) -> bool:
    """Whether a Patient entry may set a link (its body, or its patch, names one; erring on
    the side of yes)."""
    return any(
        b"link" in orjson.dumps(entry)
        for entry in bundle.get("entry") or []
        if "Patient" in str((entry.get("request") or {}).get("url") or "")
        or (entry.get("resource") or {}).get("resourceType") == "Patient"
    )


def _unlinked_patients(session: Session, response: dict[str, Any]) -> set[str]:
    """The Patients the Bundle wrote that had no link before it: those it created, and those
    its read ahead found without one."""
    unlinked = set()
    for entry in response.get("entry") or []:
        answer = entry.get("response") or {}
        ref = Reference.parse(str(answer.get("location") or ""))
        if ref is None or ref.type != "Patient" or ref.id is None:
            continue
        before = read_ahead.as_read(session, "Patient", ref.id)
        if str(answer.get("status")).startswith("201") or (
            isinstance(before, repo.StoredResource) and not before.content.get("link")
        ):
            unlinked.add(ref.id)
    return unlinked


def _merge(
    session: Session, survivor_id: str, old_id: str, old_identifier: dict[str, Any] | None
) -> list[str]:
    old = repo.read(session, "Patient", old_id)
    moved = list(
        (old.content.get("identifier") or []) if old is not None and not old.deleted else []
    )
    if old_identifier and old_identifier.get("value"):
        moved.append(old_identifier)
    _adopt_identifiers(session, survivor_id, moved)
    if old is not None and not old.deleted and old.content.get("identifier"):
        content = {k: v for k, v in old.content.items() if k != "identifier"}
        svc.update(session, "Patient", old_id, content, SYSTEM)
    count = _move_references(session, old_id, survivor_id)
    return (
        [f"Patient/{old_id} merged into Patient/{survivor_id}; {count} references moved"]
        if count
        else []
    )


def _adopt_identifiers(
    session: Session, survivor_id: str, identifiers: list[dict[str, Any]]
) -> None:
    survivor = repo.read(session, "Patient", survivor_id)
    assert survivor is not None
    have = list(survivor.content.get("identifier") or [])
    added = False
    for ident in identifiers:
        if not any(_same_identifier(ident, h) for h in have):
            have.append({**ident, "use": "old"})
            added = True
    if added:
        svc.update(
            session, "Patient", survivor_id, {**survivor.content, "identifier": have}, SYSTEM
        )


def _move_references(session: Session, old_id: str, survivor_id: str) -> int:
    old_ref, new_ref = f"Patient/{old_id}", f"Patient/{survivor_id}"
    moved = 0
    for res_type, res_id in referencing(session, "Patient", old_id):
        if res_type in _KEEP_REFERENCES or (
            res_type == "Patient" and res_id in (old_id, survivor_id)
        ):
            continue
        stored = repo.read(session, res_type, res_id)
        if stored is None or stored.deleted:
            continue
        content = _replace_reference(copy.deepcopy(stored.content), old_ref, new_ref)
        svc.update(session, res_type, res_id, content, SYSTEM)
        moved += 1
    return moved


def _replace_reference(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and value == old:
                node[key] = new
            else:
                _replace_reference(value, old, new)
    elif isinstance(node, list):
        for item in node:
            _replace_reference(item, old, new)
    return node
