"""Consents that open a patient's 42 CFR Part 2 data to an organisation.

A Consent counts when it is ``active``, names its patient, and has a ``permit`` provision (at the
top or nested) whose ``actor`` references an ``Organization``. A nested ``deny`` naming the same
organisation cancels the permit. A provision listing ``purpose`` counts only for treatment and
care coordination (v3-ActReason TREAT, ETREAT, COC, CAREMGT); one without purpose is for any.
``provision.period`` bounds when it is in force. ``provision.data`` is not honoured: a Consent is
read as covering all of the patient's Part 2 data for that organisation.

The result lives in ``consent_grants``, rewritten by a write hook whenever a Consent is created,
updated (e.g. ``status`` → ``inactive`` revokes it) or deleted, in the same transaction; the row
policy reads the table with the clock of the moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from fhir_gateway.services.hooks import WriteEvent
from fhir_gateway.store.repository import StoredResource
from fhir_gateway.store.security_tables import consent_grants

__all__ = ["Grant", "grants_of", "refresh_grants", "PURPOSES"]

PURPOSES = frozenset({"TREAT", "ETREAT", "COC", "CAREMGT"})


@dataclass(frozen=True, slots=True)
class Grant:
    organization: str  # Organization/ID
    patient_id: str
    starts: datetime | None  # naive UTC
    ends: datetime | None  # naive UTC, exclusive


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
            return (
                datetime(start.year + 1, 1, 1)
                if len(value) == 4
                else (start + timedelta(days=32)).replace(day=1)
            )
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    except ValueError:
        return None


def _purposes_ok(provision: dict[str, Any]) -> bool:
    codes = {str(p.get("code")) for p in provision.get("purpose") or [] if isinstance(p, dict)}
    return not codes or bool(codes & PURPOSES)


def _actors(provision: dict[str, Any]) -> set[str]:
    refs = {
        ((a or {}).get("reference") or {}).get("reference") or ""
        for a in provision.get("actor") or []
    }
    return {r for r in refs if r.startswith("Organization/")}


def grants_of(consent: dict[str, Any]) -> list[Grant]:
    if consent.get("status") != "active":
        return []
    patient = ((consent.get("patient") or {}).get("reference") or "").removeprefix("Patient/")
    if not patient or "/" in patient:
        return []
    permitted: dict[str, Grant] = {}
    denied: set[str] = set()
    stack: list[tuple[dict[str, Any], str]] = [(consent.get("provision") or {}, "permit")]
    while stack:
        provision, inherited = stack.pop()
        kind = provision.get("type", inherited)
        if kind == "deny":
            denied |= _actors(provision)
        elif _purposes_ok(provision):
            period = provision.get("period") or {}
            for org in _actors(provision):
                permitted[org] = Grant(
                    org,
                    patient,
                    _bound(period.get("start"), end=False),
                    _bound(period.get("end"), end=True),
                )
        stack.extend((p, kind) for p in provision.get("provision") or [] if isinstance(p, dict))
    return [g for org, g in sorted(permitted.items()) if org not in denied]


def refresh_grants(event: WriteEvent, stored: StoredResource | None) -> None:
    """on_stored('Consent'): rewrite the grants of this Consent (deleted or revoked: none)."""
    consent_id = (stored.res_id if stored is not None else None) or (
        event.before.res_id if event.before else None
    )
    if consent_id is None:
        return
    session: Session = event.session
    session.execute(delete(consent_grants).where(consent_grants.c.consent_id == consent_id))
    if stored is None or stored.deleted:
        return
    rows = [
        {
            "consent_id": consent_id,
            "organization": g.organization,
            "patient_id": g.patient_id,
            "starts": g.starts,
            "ends": g.ends,
        }
        for g in grants_of(stored.content)
    ]
    if rows:
        session.execute(insert(consent_grants), rows)
