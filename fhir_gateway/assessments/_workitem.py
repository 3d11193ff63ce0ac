"""The case manager's work item for an incomplete response: a Flag ``assessment-incomplete`` (the
monitors' code system and Flag shape) on the patient, ``flag-detail`` → the response, the missing
questions in words. High priority and category safety when a suicide question is unanswered.

Written as the gateway (SYSTEM), like the monitors' work items: whether a safety gap reaches the
worklist must not depend on the rights of whoever posted the response. One Flag per response
(deterministic id): re-scoring brings it up to date, a complete version makes it inactive.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.context import SYSTEM
from fhir_gateway.monitors._alerts import Alert, flag  # the monitors' Flag shape, not a copy
from fhir_gateway.monitors._codes import ASSESSMENT_INCOMPLETE
from fhir_gateway.services import lookup

__all__ = ["raise_incomplete", "end_incomplete", "AUTHOR"]

AUTHOR = "Organization/care-coordination"


def _text(title: str, response_ref: str, missing: list[str], safety: bool) -> str:
    head = "A suicide question is unanswered: ask the patient. " if safety else ""
    return f"{head}{title} ({response_ref}) is incomplete, no total was computed. " + "; ".join(
        missing
    )


def raise_incomplete(
    session: Session,
    flag_id: str,
    response: dict[str, Any],
    title: str,
    missing: list[str],
    *,
    safety: bool,
    author: str = AUTHOR,
) -> None:
    response_ref = f"QuestionnaireResponse/{response['id']}"
    alert = Alert(
        codes=[ASSESSMENT_INCOMPLETE],
        patient=str((response.get("subject") or {}).get("reference") or ""),
        text=_text(title, response_ref, missing, safety),
        priority="PH" if safety else "PM",
        category="safety" if safety else "admin",
        details=[response_ref],
        encounter=(response.get("encounter") or {}).get("reference"),
        labels=list(((response.get("meta") or {}).get("security")) or []),
    )
    wanted = flag(flag_id, alert, author)
    current = lookup.read(session, f"Flag/{flag_id}")
    if current is not None:
        start = (current.get("period") or {}).get("start")
        wanted["period"] = {"start": start or clock.to_instant(clock.now())}
        if {k: v for k, v in current.items() if k != "meta"} == {
            k: v for k, v in {**wanted, "id": flag_id}.items() if k != "meta"
        }:
            return
    lookup.save(session, wanted, SYSTEM)


def end_incomplete(session: Session, flag_id: str) -> None:
    current = lookup.read(session, f"Flag/{flag_id}")
    if current is None or current.get("status") != "active":
        return
    period = {**(current.get("period") or {}), "end": clock.to_instant(clock.now())}
    lookup.save(session, {**current, "status": "inactive", "period": period}, SYSTEM)
