"""Caring contacts over the API:

* ``POST /Patient/{id}/$stop-caring-contacts``: the patient asked to stop; their remaining caring
  contacts are revoked (messages already queued are not sent). Answers a Parameters resource with
  ``revoked`` (how many). Revoking one ``CommunicationRequest`` (PUT/PATCH ``status`` revoked)
  cancels that message alone; replies are Communications POSTed as usual.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from fhir_gateway.api.deps import CallerDep, DatabaseDep
from fhir_gateway.api.responses import fhir_json
from fhir_gateway.contacts import stop_for_patient

__all__ = ["router"]

router = APIRouter(tags=["caring-contacts"])


@router.post("/Patient/{res_id}/$stop-caring-contacts")
def stop_caring_contacts(res_id: str, db: DatabaseDep, caller: CallerDep) -> Response:
    revoked = db.write(stop_for_patient, res_id, caller)
    return fhir_json(
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "revoked", "valueInteger": revoked}],
        }
    )
