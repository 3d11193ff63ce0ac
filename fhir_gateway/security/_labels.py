"""Security labels (DESIGN, Privacy) and the write hook that puts them on what is stored.

* A Condition coded ICD-10 F10–F19 but F17 (substance use, tobacco excluded) is substance-use
  data: sensitivity ETH and PSY; when its sender's diagnoses are 42 CFR Part 2 records (the
  per-sender setting ``part2_senders``), also confidentiality R and policy 42CFRPart2.
* Any other F code (mental and behavioural disorders) is mental-health data: PSY.
* A resource that comes without labels and references a labelled Condition
  (``Encounter.diagnosis``, ``ServiceRequest.reasonReference``, …) is derived from it and inherits
  R/ETH/42CFRPart2; a Task inherits them from the ServiceRequest it fulfils (``focus``). When a
  Condition becomes labelled after such resources were stored (a transaction may write the
  Encounter first), they are labelled then. One level only: labelling everything that references
  a labelled Encounter would hide a whole stay. A resource its producer labelled keeps the
  producer's judgement (the care-plan engine labels each activity by what it is for: a psychiatry
  follow-up that also lists a substance-use diagnosis among its reasons is PSY, not Part 2).
* Labels are sticky: an update keeps the labels of the version it replaces, unless a case manager
  or an administrator sends it (they may correct a wrong label).

The sender of a write is what ``for_sender(session, sender)`` recorded on the session (the intake
calls it), else the hospital client that wrote it, else unknown. An unknown sender counts as a
Part 2 sender: labelling too much hides data, labelling too little discloses it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_gateway.fhir.references import iter_references
from fhir_gateway.services.hooks import WriteEvent
from fhir_gateway.store import repository as repo
from fhir_gateway.store.tables import idx_reference

__all__ = [
    "CONFIDENTIALITY",
    "ACT_CODE",
    "PSY",
    "RESTRICTED",
    "ETH",
    "PART2",
    "NORDSCLCD",
    "SENSITIVE",
    "configure",
    "for_sender",
    "is_substance_use",
    "condition_labels",
    "labels_of",
    "merge_labels",
    "is_sensitive",
    "is_part2",
    "label_write",
    "label_referrers",
]

CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

PSY = {"system": ACT_CODE, "code": "PSY", "display": "psychiatry information sensitivity"}
RESTRICTED = {"system": CONFIDENTIALITY, "code": "R", "display": "restricted"}
ETH = {"system": ACT_CODE, "code": "ETH", "display": "substance abuse information sensitivity"}
PART2 = {"system": ACT_CODE, "code": "42CFRPart2", "display": "42 CFR Part2"}
NORDSCLCD = {
    "system": ACT_CODE,
    "code": "NORDSCLCD",
    "display": "no redisclosure without consent directive",
}

SENSITIVE = frozenset({"ETH", "42CFRPart2"})  # never to a partner without the patient's Consent
_INHERITED = frozenset({"R", "ETH", "42CFRPart2"})
_ICD10 = re.compile(
    r"^(http://hl7\.org/fhir/sid/icd-10.*|urn:oid:2\.16\.840\.1\.113883\.6\.(3|90))$"
)
_SUBSTANCE = re.compile(r"^F1[0-9]")
_SENDER_KEY = "security.sender"
_LABEL_EDITORS = frozenset({"case-manager", "admin"})

_part2_senders: tuple[str, ...] = ("*",)


def configure(part2_senders: Iterable[str]) -> None:
    """Which senders' substance-use diagnoses are Part 2 records (``*``: all)."""
    global _part2_senders
    _part2_senders = tuple(part2_senders)


def for_sender(session: Session, sender: str | None) -> None:
    """Name the sender of what this session writes (the intake: ``APP|FACILITY`` or endpoint)."""
    session.info[_SENDER_KEY] = sender


def _is_part2_sender(*senders: str | None) -> bool:
    known = [s for s in senders if s]
    if "*" in _part2_senders or not known:
        return True
    return any(s in _part2_senders for s in known)


# -- pure label logic ----------------------------------------------------------------------------


def _icd10_codes(resource: dict[str, Any]) -> list[str]:
    codings = (resource.get("code") or {}).get("coding") or []
    return [
        str(c.get("code", "")).replace(".", "").upper()
        for c in codings
        if isinstance(c, dict) and _ICD10.match(str(c.get("system", "")))
    ]


def is_substance_use(code: str) -> bool:
    code = code.replace(".", "").upper()
    return bool(_SUBSTANCE.match(code)) and not code.startswith("F17")


def condition_labels(condition: dict[str, Any], *, part2: bool) -> list[dict[str, Any]]:
    codes = _icd10_codes(condition)
    if any(is_substance_use(c) for c in codes):
        return (
            [dict(RESTRICTED), dict(ETH), dict(PART2), dict(PSY)]
            if part2
            else [dict(ETH), dict(PSY)]
        )
    if any(c.startswith("F") for c in codes):
        return [dict(PSY)]
    return []


def labels_of(resource: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list(((resource or {}).get("meta") or {}).get("security") or [])


def _codes(resource: dict[str, Any] | None) -> set[str]:
    return {str(lb.get("code")) for lb in labels_of(resource) if isinstance(lb, dict)}


def is_sensitive(resource: dict[str, Any] | None) -> bool:
    return bool(_codes(resource) & SENSITIVE)


def is_part2(resource: dict[str, Any] | None) -> bool:
    return "42CFRPart2" in _codes(resource)


def merge_labels(*label_lists: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for labels in label_lists:
        for label in labels:
            if isinstance(label, dict):
                seen.setdefault((str(label.get("system")), str(label.get("code"))), label)
    return list(seen.values())


def _set_labels(doc: dict[str, Any], labels: list[dict[str, Any]]) -> None:
    if labels:
        doc["meta"] = {**(doc.get("meta") or {}), "security": labels}


# -- the write hook ------------------------------------------------------------------------------


def label_write(event: WriteEvent) -> None:
    """on_check(None): complete ``event.after``'s labels before it is stored (mutates it)."""
    doc = event.after
    if doc is None:
        return None
    computed: list[dict[str, Any]] = []
    if event.res_type == "Condition":
        sender = event.session.info.get(_SENDER_KEY)
        part2 = _is_part2_sender(sender, *_client_senders(event))
        computed = condition_labels(doc, part2=part2)
    if not labels_of(doc):
        computed += _inherited(event.session, doc)
    kept = (
        labels_of(event.before.content)
        if event.before and event.caller.role not in _LABEL_EDITORS
        else []
    )
    merged = merge_labels(labels_of(doc), computed, kept)
    if merged != labels_of(doc):
        _set_labels(doc, merged)
    return None


def _client_senders(event: WriteEvent) -> list[str]:
    if event.caller.role != "hospital":
        return []
    return [event.caller.client_id]


def _inherited(session: Session, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """R/ETH/42CFRPart2 of the labelled Conditions (and, for a Task, ServiceRequest) it references."""
    refs = [str(node[key]) for node, key in iter_references(doc)]
    sources = {("Condition", ref.split("/", 1)[1]) for ref in refs if _is_ref(ref, "Condition")}
    if doc.get("resourceType") == "Task":
        focus = (doc.get("focus") or {}).get("reference") or ""
        if _is_ref(focus, "ServiceRequest"):
            sources.add(("ServiceRequest", focus.split("/", 1)[1]))
    if not sources:
        return []
    found: list[dict[str, Any]] = []
    for res_type, res_id in sources:
        stored = repo.read(session, res_type, res_id)
        if stored is not None and not stored.deleted:
            found += [lb for lb in labels_of(stored.content) if lb.get("code") in _INHERITED]
    return merge_labels(found)


def _is_ref(ref: str, res_type: str) -> bool:
    head, _, rest = ref.partition("/")
    return head == res_type and bool(rest) and "/" not in rest


def label_referrers(event: WriteEvent, stored: repo.StoredResource | None) -> None:
    """on_stored('Condition'): a newly sensitive Condition labels what already references it."""
    if stored is None or stored.deleted or not is_sensitive(stored.content):
        return
    if event.before is not None and is_sensitive(event.before.content):
        return  # referrers were labelled when it first became sensitive
    inherited = [lb for lb in labels_of(stored.content) if lb.get("code") in _INHERITED]
    session = event.session
    refs = session.execute(
        select(idx_reference.c.res_type, idx_reference.c.res_id)
        .where(
            idx_reference.c.target_type == "Condition", idx_reference.c.target_id == stored.res_id
        )
        .distinct()
    ).all()
    for res_type, res_id in refs:
        if res_type != "Condition":
            _relabel(session, res_type, res_id, inherited)


def _relabel(session: Session, res_type: str, res_id: str, labels: list[dict[str, Any]]) -> None:
    """A new version with the labels added (history stays append-only; the older, unlabelled
    versions are only served to callers who may see the labelled current one)."""
    current = repo.read(session, res_type, res_id, for_update=True)
    if current is None or current.deleted or labels_of(current.content):
        return  # gone, or labelled by its producer
    merged = merge_labels(labels_of(current.content), labels)
    if merged == labels_of(current.content):
        return
    doc = dict(current.content)
    _set_labels(doc, merged)
    repo.update_resource(session, doc, res_id)
