"""Who did what from the patient page: a Provenance for each change a person makes there (an alert
acknowledged or resolved, a consent recorded), naming the signed-in user and the organisation
they act for. The patient page's timeline reads these back, as it reads the workflow's own
Provenance for referral transitions."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.context import Caller
from fhir_gateway.services import resources

__all__ = ["record_provenance", "WEB_ACTIVITY"]

WEB_ACTIVITY = "http://fhir-gateway.org/fhir/StructureDefinition/web-activity"
_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def record_provenance(
    session: Session, caller: Caller, user: str, *, target: str, activity: str, code: str
) -> None:
    """A Provenance of ``target`` (``Type/id/_history/n``): ``user`` did ``activity`` (words)."""
    agent: dict[str, Any] = {
        "type": {"coding": [{"system": _PARTICIPANT, "code": "author"}]},
        "who": {"display": user},
    }
    if caller.organization:
        agent["onBehalfOf"] = {"reference": caller.organization}
    provenance = {
        "resourceType": "Provenance",
        "extension": [{"url": WEB_ACTIVITY, "valueString": activity}],
        "target": [{"reference": target}],
        "recorded": clock.to_instant(clock.now()),
        "activity": {"coding": [{"system": _OPERATION, "code": code}], "text": activity},
        "agent": [agent],
    }
    resources.create(session, "Provenance", provenance, caller)
