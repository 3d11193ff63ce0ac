"""Consent evaluation: may this patient's data, so labelled, go to this recipient for this purpose?

A Consent is read as one set of rules:

* it counts only when ``active`` and for the patient in question (``inactive`` revokes it);
* provisions nest; one without ``type`` takes its parent's, and the top one must state its type
  (a Consent that cannot be read grants nothing: the protective answer);
* a ``permit`` provision grants to the ``actor`` references it names (none: nobody), for the
  purposes it lists (none: any), for the data labels it lists in ``securityLabel`` (none: all; else
  every ETH/42CFRPart2 label of the data must be listed), in its ``period`` and its parents'
  (a date's end is the whole day, UTC);
* a ``deny`` provision that names the recipient, or names nobody, and covers the purpose cancels
  every permit of that Consent for it, whatever its period (the protective reading);
* ``provision.data`` is not honoured: a permit covers all of the patient's data.

Purposes (v3-ActReason): the gateway discloses for treatment and care coordination; a provision
that lists TREAT, ETREAT, COC or CAREMGT covers all four (they are what a care partner does).

``grants_of`` turns one Consent into time-bounded grants (the row policy keeps them in
``consent_grants`` and compares their bounds with the clock in SQL); ``evaluate_consent`` asks the
same grants about one moment, so the engines and the row policy cannot disagree. The table holds
the grants for ETH+42CFRPart2 data (SQL cannot tell a permit's ``securityLabel`` apart), so the
care-plan engine asks that same question before it releases a referral.

The 2024 Part 2 rule (shapes in ``consent_forms``):

* an actor may designate a class instead of naming a recipient: ``treating-providers`` (the TPO
  consent) grants to ``TREATING_CLASS``, which reaches a recipient only when the directory marks
  it a treating provider and it has a treating relationship with the patient (``Recipient``,
  see ``_recipients``); a plain ``str`` recipient is taken as named, never in a class;
* SUD counselling notes (data labelled PSYTHPN) are disclosed only under a consent whose permit
  lists PSYTHPN, to recipients it names; such a consent covers the notes and nothing else, and no
  other consent covers them (``Grant.notes`` keeps the two apart, in the table too).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.fhir.references import Reference
from fhir_gateway.privacy._labels import PSYTHPN, SENSITIVE, label_codes
from fhir_gateway.privacy._recipients import Recipient
from fhir_gateway.privacy.consent_forms import TREATING_PROVIDERS, recipient_class

__all__ = [
    "CARE_COORDINATION",
    "TREATING_CLASS",
    "Grant",
    "ConsentDecision",
    "grants_of",
    "evaluate_consent",
    "consents_of",
    "patient_of",
]

CARE_COORDINATION = frozenset({"TREAT", "ETREAT", "COC", "CAREMGT"})
_PART2_DATA = frozenset({"ETH", "42CFRPart2"})
TREATING_CLASS = f"class:{TREATING_PROVIDERS}"  # a grant's recipient: the class, not a name
_NOTES = PSYTHPN["code"]


@dataclass(frozen=True, slots=True)
class Grant:
    consent: str  # Consent/id
    recipient: str  # Organization/ID, RelatedPerson/ID, …
    patient_id: str
    starts: datetime | None  # naive UTC
    ends: datetime | None  # naive UTC, exclusive
    notes: bool = False  # for SUD counselling notes (only), else for everything but them

    def reaches(self, recipient: Recipient) -> bool:
        if self.recipient == TREATING_CLASS:
            return recipient.in_treating_class
        return self.recipient == recipient.reference

    def in_force(self, at: datetime) -> bool:
        moment = _naive_utc(at)
        return (self.starts is None or self.starts <= moment) and (
            self.ends is None or moment < self.ends
        )


@dataclass(frozen=True, slots=True)
class ConsentDecision:
    permitted: bool
    reason: str
    consent: str | None = None  # the Consent that permits

    def __bool__(self) -> bool:
        return self.permitted


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _bound(value: str | None, *, end: bool) -> datetime | None:
    """A FHIR date or dateTime as naive UTC; a date's end is the start of the next day."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = datetime.fromisoformat(value)
            return day + timedelta(days=1) if end else day
        if len(value) in (4, 7):  # year or year-month: the whole span
            parts = [int(p) for p in value.split("-")] + [1]
            start = datetime(parts[0], parts[1] if len(value) == 7 else 1, 1)
            if not end:
                return start
            if len(value) == 4:
                return datetime(start.year + 1, 1, 1)
            return (start + timedelta(days=32)).replace(day=1)
        return _naive_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


Window = tuple[datetime | None, datetime | None]


def _window(period: Any, outer: Window | None) -> Window | None:
    """The provision's period within its parents'; None when a bound cannot be read."""
    if outer is None or not isinstance(period, dict):
        return outer
    start, end = _bound(period.get("start"), end=False), _bound(period.get("end"), end=True)
    if (period.get("start") and start is None) or (period.get("end") and end is None):
        return None
    starts = max((s for s in (outer[0], start) if s is not None), default=None)
    ends = min((e for e in (outer[1], end) if e is not None), default=None)
    return starts, ends


def _codes(concepts: Any) -> set[str]:
    return {str(c.get("code")) for c in concepts or [] if isinstance(c, dict) and c.get("code")}


def _covers_purpose(provision: dict[str, Any], purpose: str) -> bool:
    listed = _codes(provision.get("purpose"))
    wanted = CARE_COORDINATION if purpose in CARE_COORDINATION else {purpose}
    return not listed or bool(listed & wanted)


def _covers_labels(provision: dict[str, Any], labels: frozenset[str]) -> bool:
    listed = _codes(provision.get("securityLabel"))
    return not listed or (labels & SENSITIVE) <= listed


def _actors(provision: dict[str, Any], *, classes: bool) -> set[str]:
    """The recipients named (``Type/id``), and with ``classes`` the classes designated."""
    found = set()
    for actor in provision.get("actor") or []:
        if not isinstance(actor, dict):
            continue
        ref = str((actor.get("reference") or {}).get("reference") or "")
        if "/" in ref:
            found.add(ref)
        elif classes and recipient_class(actor) == TREATING_PROVIDERS:
            found.add(TREATING_CLASS)
    return found


def _for_notes(provision: dict[str, Any]) -> bool:
    """Does a provision, or one nested in it, list SUD counselling notes?"""
    if _NOTES in _codes(provision.get("securityLabel")):
        return True
    return any(_for_notes(p) for p in provision.get("provision") or [] if isinstance(p, dict))


def patient_of(consent: dict[str, Any]) -> str | None:
    """The id of the Consent's patient (a plain ``Patient/ID`` reference), else None."""
    return Reference.id_of((consent.get("patient") or {}).get("reference"), "Patient")


def grants_of(
    consent: dict[str, Any],
    *,
    purpose: str = "COC",
    labels: Iterable[dict[str, Any] | str] = _PART2_DATA,
) -> list[Grant]:
    """What one Consent grants, per recipient, for this purpose and data so labelled."""
    patient = patient_of(consent)
    top = consent.get("provision")
    if consent.get("status") != "active" or patient is None or not isinstance(top, dict):
        return []
    if top.get("type") not in ("permit", "deny"):
        return []  # cannot be read: grants nothing
    codes = label_codes(labels)
    notes = _for_notes(top)  # a consent for counselling notes: to named recipients only
    permitted: dict[str, Window] = {}
    denied: set[str] = set()
    deny_all = False  # a nested deny naming nobody (a top one is "deny all but the exceptions")
    stack: list[tuple[dict[str, Any], str, Window | None]] = [(top, "permit", (None, None))]
    while stack:
        provision, inherited, outer = stack.pop()
        kind = provision.get("type", inherited)
        window = _window(provision.get("period"), outer)
        actors = _actors(provision, classes=kind == "permit" and not notes)
        if kind == "deny" and _covers_purpose(provision, purpose):
            denied |= actors
            deny_all = deny_all or (not actors and provision is not top)
        elif (
            kind == "permit"
            and window is not None
            and _covers_purpose(provision, purpose)
            and _covers_labels(provision, codes)
        ):
            for actor in actors:
                permitted.setdefault(actor, window)
        stack.extend(
            (p, kind, window) for p in provision.get("provision") or [] if isinstance(p, dict)
        )
    if deny_all:
        return []
    cid = f"Consent/{consent.get('id')}"
    return [
        Grant(cid, actor, patient, s, e, notes)
        for actor, (s, e) in sorted(permitted.items())
        if actor not in denied
    ]


def evaluate_consent(
    consents: Iterable[dict[str, Any]],
    *,
    patient: str,
    recipient: str | Recipient,
    at: datetime,
    purpose: str = "COC",
    labels: Iterable[dict[str, Any] | str] = _PART2_DATA,
) -> ConsentDecision:
    """Do the patient's Consents permit ``recipient`` (e.g. ``Organization/x``, or a ``Recipient``
    with the directory's marks and its relationship to the patient) to receive data carrying
    ``labels`` for ``purpose`` at ``at``? Deny, with the reason, unless one does."""
    patient_id = patient.removeprefix("Patient/")
    codes = label_codes(labels)
    notes = _NOTES in codes
    who = recipient if isinstance(recipient, Recipient) else Recipient(recipient)
    reasons: list[str] = []
    for consent in consents:
        cid = f"Consent/{consent.get('id')}"
        if patient_of(consent) != patient_id:
            reasons.append(f"{cid} is another patient's")
            continue
        if consent.get("status") != "active":
            reasons.append(f"{cid} is {consent.get('status') or 'without a status'}, not active")
            continue
        grants = [
            g
            for g in grants_of(consent, purpose=purpose, labels=codes)
            if g.notes == notes and g.reaches(who)
        ]
        live = [g for g in grants if g.in_force(at)]
        if live:
            return ConsentDecision(True, f"{cid} permits {who.reference} ({purpose})", cid)
        reasons.append(
            f"{cid} is not in force for {who.reference} then"
            if grants
            else f"{cid} does not permit {who.reference} for {purpose}"
            + (" (SUD counselling notes)" if notes else "")
        )
    return ConsentDecision(
        False, "; ".join(reasons) or f"the patient has no Consent for {who.reference}"
    )


def consents_of(session: Session, patient: str) -> list[dict[str, Any]]:
    """The stored, active Consents of ``Patient/ID`` (read as the gateway: every one of them)."""
    from fhir_gateway.context import SYSTEM
    from fhir_gateway.store import repository as repo
    from fhir_gateway.store.search import match_ids

    out = []
    for res_id in match_ids(
        session, "Consent", [("patient", patient), ("status", "active")], caller=SYSTEM
    ):
        stored = repo.read(session, "Consent", res_id)
        if stored is not None and not stored.deleted:
            out.append(stored.content)
    return out
