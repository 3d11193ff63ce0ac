"""The write hooks that put the privacy module's labels on what is stored.

The rules themselves (which diagnosis carries which label, whose diagnoses are Part 2 records)
are ``fhir_gateway.privacy``'s; here they are applied to writes:

* a Condition gets the labels of its code (or, uncoded from a Part 2 sender, R/ETH/42CFRPart2);
* a DocumentReference of a type the sender names as SUD counselling notes
  (``counselling_note_types``), from a Part 2 sender, gets R/ETH/42CFRPart2/PSY and PSYTHPN;
* a Part 2 Consent (its policy is 42 CFR Part 2) is Part 2 data itself (``consent_labels``);
* medication data (MedicationRequest, -Dispense, -Administration, -Statement) get the labels of
  their medicine, as a diagnosis does (``medication_labels``: Part 2 only from a Part 2 sender);
* a resource that comes without labels and references a labelled Condition
  (``Encounter.diagnosis``, ``ServiceRequest.reasonReference``, …) is derived from it and inherits
  R/ETH/42CFRPart2; a Task inherits them from the ServiceRequest it fulfils (``focus``), a message
  on a referral (Communication) from the Task, ServiceRequest and messages it names, whatever
  labels its writer gave it (``privacy.LABEL_SOURCES``, ``ALWAYS_INHERITS``). When a
  Condition becomes labelled after such resources were stored (an Encounter stored before its
  diagnosis was; a transaction writes a new resource after the new diagnoses it names, so
  its first version has the labels), they are labelled then. One level only: labelling everything that references
  a labelled Encounter would hide a whole stay. A resource its producer labelled keeps the
  producer's judgement (the care-plan engine labels each activity by what it is for);
* labels are sticky: an update keeps the labels of the version it replaces (a partner's update
  brings none: what it sends back is the disclosed copy, with marks that travel and are not
  stored), unless a case manager or an administrator sends it (they may correct a wrong label), or a diagnosis labelled only
  because it was uncoded now comes with its code.

The sender of a write is what ``for_sender(session, sender)`` recorded on the session (the intake
calls it), else the hospital client that wrote it, else unknown (``privacy.is_part2_sender``
gives the protective answer for an unknown sender).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import bindparam, select, tuple_
from sqlalchemy.orm import Session

from fhir_gateway import privacy
from fhir_gateway.fhir.references import Reference, reference_strings
from fhir_gateway.hooks import WriteEvent, settings_of
from fhir_gateway.store import read_ahead
from fhir_gateway.store import repository as repo
from fhir_gateway.store.prebuilt import Prebuilt
from fhir_gateway.store.tables import idx_reference, resources

__all__ = ["for_sender", "label_write", "label_referrers", "staged_sources"]

_SENDER_KEY = "security.sender"
_STAGED_KEY = "security.staged"
_LABEL_EDITORS = frozenset({"case-manager", "admin"})


def for_sender(session: Session, sender: str | None) -> None:
    """Name the sender of what this session writes (the intake: ``APP|FACILITY`` or endpoint)."""
    session.info[_SENDER_KEY] = sender


@contextmanager
def staged_sources(session: Session) -> Iterator[dict[tuple[str, str], dict[str, Any]]]:
    """While a transaction's writes are checked to be stored together (issue 21), the checked
    resources not yet stored, by (type, id), that it fills: a resource checked after them
    inherits their labels as if they were stored (an Encounter from the new diagnosis beside
    it). The caller empties it once they are stored (a later change reads the stored row)."""
    outer = session.info.get(_STAGED_KEY)
    staged: dict[tuple[str, str], dict[str, Any]] = {}
    session.info[_STAGED_KEY] = staged
    try:
        yield staged
    finally:
        if outer is None:
            session.info.pop(_STAGED_KEY, None)
        else:
            session.info[_STAGED_KEY] = outer


def _part2(event: WriteEvent) -> bool:
    sender = event.session.info.get(_SENDER_KEY)
    senders = [sender] if sender else _client_senders(event)
    return privacy.is_part2_sender(settings_of(event.session), *senders)


def _note_types(event: WriteEvent) -> frozenset[str]:
    sender = event.session.info.get(_SENDER_KEY)
    senders = [sender] if sender else _client_senders(event)
    return privacy.counselling_note_types(settings_of(event.session), *senders)


def label_write(event: WriteEvent) -> None:
    """before_write(None): complete ``event.after``'s labels before it is stored (mutates it)."""
    doc = event.after
    if doc is None:
        return None
    if event.caller.role == "partner" and event.before is not None:
        _forget_disclosure_marks(doc)
    computed: list[dict[str, Any]] = []
    if event.res_type == "Condition":
        computed = privacy.condition_labels(doc, part2=_part2(event))
    elif event.res_type == "DocumentReference":
        computed = privacy.counselling_note_labels(
            doc, part2=_part2(event), note_types=_note_types(event)
        )
    elif event.res_type == "Consent":
        computed = privacy.consent_labels(doc)
    elif event.res_type in privacy.MEDICATION_TYPES:
        computed = privacy.medication_labels(doc, part2=_part2(event))
    if not privacy.labels_of(doc) or event.res_type in privacy.ALWAYS_INHERITS:
        computed += _inherited(event.session, doc)
    merged = privacy.merge_labels(privacy.labels_of(doc), computed, _kept(event))
    if merged != privacy.labels_of(doc):
        doc["meta"] = {**(doc.get("meta") or {}), "security": merged}
    return None


def _forget_disclosure_marks(doc: dict[str, Any]) -> None:
    """A partner writes back the copy it was given: what travelled with that copy (purposes,
    obligations, the consent, the 2.32 notice) is not stored with the data; the stored labels stay
    (sticky), and a partner changes no label."""
    meta = dict(doc.get("meta") or {})
    meta.pop("security", None)
    meta.pop("extension", None)
    doc["meta"] = meta


def _kept(event: WriteEvent) -> list[dict[str, Any]]:
    """The labels of the replaced version that stay (sticky)."""
    if event.before is None or event.caller.role in _LABEL_EDITORS or event.after is None:
        return []
    before = event.before.content
    if (
        event.res_type == "Condition"
        and privacy.is_uncoded(before)
        and not privacy.is_uncoded(event.after)
    ):
        return []  # labelled for want of a code: the code decides now
    if (
        event.res_type in privacy.MEDICATION_TYPES
        and privacy.is_uncoded_drug(before)
        and not privacy.is_uncoded_drug(event.after)
    ):
        return []  # a drug labelled for want of a code: the code decides now
    return privacy.labels_of(before)


def _client_senders(event: WriteEvent) -> list[str]:
    if event.caller.role != "hospital":
        return []
    return [event.caller.client_id]


def _inherited(session: Session, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """R/ETH/42CFRPart2 of the labelled Conditions it references, and of the referral resources
    ``privacy.LABEL_SOURCES`` names for its type (a Task: its ServiceRequest; a message: its
    thread)."""
    refs = reference_strings(doc)
    sources = {("Condition", i) for ref in refs if (i := Reference.id_of(ref, "Condition"))}
    if doc.get("resourceType") == "Task":
        focus = Reference.id_of((doc.get("focus") or {}).get("reference"), "ServiceRequest")
        if focus is not None:
            sources.add(("ServiceRequest", focus))
    else:
        kinds = privacy.LABEL_SOURCES.get(str(doc.get("resourceType")), frozenset())
        parsed = (Reference.parse_relative(ref) for ref in refs)
        sources |= {(p.type, p.id) for p in parsed if p is not None and p.type in kinds}
    if not sources:
        return []
    staged: dict[tuple[str, str], dict[str, Any]] = session.info.get(_STAGED_KEY) or {}
    contents = [staged[s] for s in sources if s in staged]
    unstaged = {s for s in sources if s not in staged}
    if unstaged:
        current = _current(session, unstaged)
        contents += [
            stored.content
            for source in unstaged
            if (stored := current.get(source)) is not None and not stored.deleted
        ]
    found = [
        lb
        for content in contents
        for lb in privacy.labels_of(content)
        if lb.get("code") in privacy.INHERITED
    ]
    return privacy.merge_labels(found)


def _current(
    session: Session, sources: set[tuple[str, str]]
) -> dict[tuple[str, str], repo.StoredResource]:
    """The stored rows of ``sources``: those the transaction read ahead (an update message's
    diagnoses), then one read per type (an Encounter's diagnoses at once)."""
    by_type: dict[str, list[str]] = {}
    found: dict[tuple[str, str], repo.StoredResource] = {}
    for res_type, res_id in sorted(sources):
        ahead = read_ahead.current_row(session, res_type, res_id)
        if isinstance(ahead, repo.StoredResource):
            found[(res_type, res_id)] = ahead
        elif ahead is repo.UNREAD:
            by_type.setdefault(res_type, []).append(res_id)
    for res_type, ids in by_type.items():
        if len(ids) == 1:
            stored = repo.read(session, res_type, ids[0])
            rows = [stored] if stored is not None else []
        else:
            rows = repo.read_many(session, res_type, ids)
        found.update(((res_type, row.res_id), row) for row in rows)
    return found


def label_referrers(event: WriteEvent, stored: repo.StoredResource | None) -> None:
    """after_write('Condition'): a newly sensitive Condition labels what already references it."""
    if stored is None or stored.deleted or not privacy.is_sensitive(stored.content):
        return
    if event.before is not None and privacy.is_sensitive(event.before.content):
        return  # referrers were labelled when it first became sensitive
    inherited = [
        lb for lb in privacy.labels_of(stored.content) if lb.get("code") in privacy.INHERITED
    ]
    session = event.session
    # with their content: those labelled already are not read again
    rows = _REFERRERS.run(session, {"condition": stored.res_id}).all()
    for res_type, res_id, content in rows:
        if not privacy.labels_of(content):
            _relabel(session, res_type, res_id, inherited)


_REFERRERS = Prebuilt(  # what references a Condition, with its content; built once
    select(resources.c.res_type, resources.c.res_id, resources.c.content).where(
        tuple_(resources.c.res_type, resources.c.res_id).in_(
            select(idx_reference.c.res_type, idx_reference.c.res_id).where(
                idx_reference.c.target_type == "Condition",
                idx_reference.c.target_id == bindparam("condition"),
            )
        ),
        resources.c.res_type != "Condition",
        resources.c.deleted.is_(False),
    )
)


def _relabel(session: Session, res_type: str, res_id: str, labels: list[dict[str, Any]]) -> None:
    """A new version with the labels added (history stays append-only; the older, unlabelled
    versions are only served to callers who may see the labelled current one)."""
    current = repo.read(session, res_type, res_id, for_update=True)
    if current is None or current.deleted or privacy.labels_of(current.content):
        return  # gone, or labelled by its producer
    doc = privacy.with_labels(current.content, labels)
    if doc is not current.content:
        repo.update_resource(session, dict(doc), res_id)
