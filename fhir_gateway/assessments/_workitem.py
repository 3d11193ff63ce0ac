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
from fhir_gateway.monitors import MONITOR_FLAGS
from fhir_gateway.services import lookup

__all__ = ["raise_incomplete", "end_incomplete", "AUTHOR", "INCOMPLETE"]

AUTHOR = "Organization/care-coordination"
INCOMPLETE = {  # monitors' ASSESSMENT_INCOMPLETE concept (monitors/_codes.py), as it is coded there
    "system": MONITOR_FLAGS,
    "code": "assessment-incomplete",
    "display": "Assessment incomplete",
}
_FLAG_DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"
_FLAG_PRIORITY = "http://hl7.org/fhir/StructureDefinition/flag-priority"
_PRIORITY = {"PH": "High priority", "PM": "Medium priority"}


def _flag(
    flag_id: str, response: dict[str, Any], text: str, safety: bool, author: str
) -> dict[str, Any]:
    """The shape of the monitors' work-item Flags (monitors/_alerts.py ``flag``)."""
    priority = "PH" if safety else "PM"
    category = "safety" if safety else "admin"
    doc: dict[str, Any] = {
        "resourceType": "Flag",
        "id": flag_id,
        "meta": {"tag": [INCOMPLETE]},
        "extension": [
            {
                "url": _FLAG_PRIORITY,
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/flag-priority-code",
                            "code": priority,
                            "display": _PRIORITY[priority],
                        }
                    ]
                },
            },
            {
                "url": _FLAG_DETAIL,
                "valueReference": {"reference": f"QuestionnaireResponse/{response['id']}"},
            },
        ],
        "status": "active",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/flag-category",
                        "code": category,
                    }
                ]
            }
        ],
        "code": {"coding": [INCOMPLETE], "text": text},
        "subject": response["subject"],
        "period": {"start": clock.to_instant(clock.now())},
        "author": {"reference": author},
    }
    labels = (response.get("meta") or {}).get("security")
    if labels:
        doc["meta"]["security"] = labels
    if (response.get("encounter") or {}).get("reference"):
        doc["encounter"] = {"reference": response["encounter"]["reference"]}
    return doc


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
    text = _text(title, response_ref, missing, safety)
    wanted = _flag(flag_id, response, text, safety, author)
    current = lookup.read(session, f"Flag/{flag_id}")
    if current is not None:
        start = (current.get("period") or {}).get("start")
        wanted["period"] = {"start": start or clock.to_instant(clock.now())}
        if {k: v for k, v in current.items() if k != "meta"} == {
            k: v for k, v in wanted.items() if k != "meta"
        }:
            return  # unchanged: no new version
    lookup.save(session, wanted, SYSTEM)


def end_incomplete(session: Session, flag_id: str) -> None:
    current = lookup.read(session, f"Flag/{flag_id}")
    if current is None or current.get("status") != "active":
        return
    period = {**(current.get("period") or {}), "end": clock.to_instant(clock.now())}
    lookup.save(session, {**current, "status": "inactive", "period": period}, SYSTEM)
