"""Activities a screening added to the patient's active plan that wait for the case manager
(review mode): listed on the patient page with Approve and Decline.

A decision sets the ServiceRequest ``active`` or ``revoked`` through the services with the user's
rights, as a PUT through the API does; the plan rules then send its Task to the partner (its
clock still counted from the screening) or cancel it, and end the screening's work item once
nothing of it waits. A request that is not such a held activity of this patient answers 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.assessments import REVISION_SYSTEM
from fhir_gateway.context import Caller
from fhir_gateway.errors import NotFound
from fhir_gateway.services import resources
from fhir_gateway.web._patient_reader import PatientReader, concept_text

__all__ = ["HeldActivity", "DECISIONS", "held_activities", "decide_held"]

DECISIONS = {"approve": "active", "decline": "revoked"}  # the verb → the ServiceRequest's status


@dataclass(frozen=True, slots=True)
class HeldActivity:
    request_id: str
    title: str
    why: str  # the note the plan rules left: which screening result asked for it
    version: str


def _held(request: dict[str, Any], patient_ref: str) -> bool:
    return (
        request.get("status") == "draft"
        and (request.get("subject") or {}).get("reference") == patient_ref
        and any(i.get("system") == REVISION_SYSTEM for i in request.get("identifier") or [])
    )


def held_activities(reader: PatientReader) -> list[HeldActivity]:
    """The screening-added requests of the patient still waiting for a decision."""
    held = [r for r in reader.of_patient("ServiceRequest") if _held(r, reader.patient_ref)]
    return [
        HeldActivity(
            request_id=str(r["id"]),
            title=concept_text(r.get("code"), "Activity"),
            why=" ".join(str(n.get("text") or "") for n in r.get("note") or []).strip(),
            version=str((r.get("meta") or {}).get("versionId") or ""),
        )
        for r in held
    ]


def decide_held(
    session: Session, caller: Caller, patient_id: str, request_id: str, verb: str, version: int
) -> str:
    """Approve or decline one held activity; returns the ServiceRequest's new status."""
    status = DECISIONS.get(verb)
    if status is None:
        raise NotFound(f"There is no decision {verb!r} for an added activity.")
    request = resources.read(session, "ServiceRequest", request_id, caller).content
    if not _held(request, f"Patient/{patient_id}"):
        raise NotFound(f"There is no activity {request_id} of this patient waiting for approval.")
    changed = {**request, "status": status}
    resources.update(session, "ServiceRequest", request_id, changed, caller, if_match=version)
    return status
