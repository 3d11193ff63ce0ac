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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.fhir.references import Reference
from fhir_gateway.privacy._labels import SENSITIVE, label_codes

__all__ = [
    "CARE_COORDINATION",
    "Grant",
    "ConsentDecision",
    "grants_of",
    "evaluate_consent",
    "consents_of",
    "patient_of",
]

CARE_COORDINATION = frozenset({"TREAT", "ETREAT", "COC", "CAREMGT"})
_PART2_DATA = frozenset({"ETH", "42CFRPart2"})


@dataclass(frozen=True, slots=True)
class Grant:
    consent: str  # Consent/id
    recipient: str  # Organization/ID, RelatedPerson/ID, …
    patient_id: str
    starts: datetime | None  # naive UTC
    ends: datetime | None  # naive UTC, exclusive

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


def _actors(provision: dict[str, Any]) -> set[str]:
    refs = {
        ((a or {}).get("reference") or {}).get("reference") or ""
        for a in provision.get("actor") or []
        if isinstance(a, dict)
    }
    return {r for r in refs if "/" in r}


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
    permitted: dict[str, Window] = {}
    denied: set[str] = set()
    deny_all = False  # a nested deny naming nobody (a top one is "deny all but the exceptions")
    stack: list[tuple[dict[str, Any], str, Window | None]] = [(top, "permit", (None, None))]
    while stack:
        provision, inherited, outer = stack.pop()
        kind = provision.get("type", inherited)
        window = _window(provision.get("period"), outer)
        actors = _actors(provision)
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
        Grant(cid, actor, patient, s, e)
        for actor, (s, e) in sorted(permitted.items())
        if actor not in denied
    ]


def evaluate_consent(
    consents: Iterable[dict[str, Any]],
    *,
    patient: str,
    recipient: str,
    at: datetime,
    purpose: str = "COC",
    labels: Iterable[dict[str, Any] | str] = _PART2_DATA,
) -> ConsentDecision:
    """Do the patient's Consents permit ``recipient`` (e.g. ``Organization/x``) to receive data
    carrying ``labels`` for ``purpose`` at ``at``? Deny, with the reason, unless one does."""
    patient_id = patient.removeprefix("Patient/")
    codes = label_codes(labels)
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
            g for g in grants_of(consent, purpose=purpose, labels=codes) if g.recipient == recipient
        ]
        live = [g for g in grants if g.in_force(at)]
        if live:
            return ConsentDecision(True, f"{cid} permits {recipient} ({purpose})", cid)
        reasons.append(
            f"{cid} is not in force for {recipient} then"
            if grants
            else f"{cid} does not permit {recipient} for {purpose}"
        )
    return ConsentDecision(
        False, "; ".join(reasons) or f"the patient has no Consent for {recipient}"
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
