"""Has the patient consented to share with a partner? An active Consent of the patient with a
permit provision (top level or nested) naming that Organization as an actor, in force today."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.context import SYSTEM
from fhir_gateway.store import repository as repo
from fhir_gateway.store.search import match_ids

__all__ = ["consented_organizations", "permits"]


def _in_force(period: dict[str, Any] | None, today: date) -> bool:
    period = period or {}
    day = today.isoformat()
    return (not period.get("start") or period["start"][:10] <= day) and (
        not period.get("end") or day <= period["end"][:10]
    )


def permits(consent: dict[str, Any], today: date) -> set[str]:
    """The actors a Consent lets the patient's data go to."""
    if consent.get("status") != "active":
        return set()
    out: set[str] = set()
    stack = [(consent.get("provision") or {}, "permit")]
    while stack:
        provision, inherited = stack.pop()
        kind = provision.get("type", inherited)
        if kind == "permit" and _in_force(provision.get("period"), today):
            out |= {
                (a.get("reference") or {}).get("reference", "") for a in provision.get("actor", [])
            }
        stack.extend((p, kind) for p in provision.get("provision", []))
    return {ref for ref in out if ref}


def consented_organizations(session: Session, patient_ref: str, today: date) -> frozenset[str]:
    orgs: set[str] = set()
    for res_id in match_ids(
        session, "Consent", [("patient", patient_ref), ("status", "active")], caller=SYSTEM
    ):
        stored = repo.read(session, "Consent", res_id)
        if stored is not None and not stored.deleted:
            orgs |= permits(stored.content, today)
    return frozenset(orgs)
