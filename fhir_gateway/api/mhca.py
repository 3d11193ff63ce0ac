"""Operations of India's Mental Healthcare Act 2017 (the use cases are ``services.mhca``'s):

* ``POST /RelatedPerson/{id}/$confirm-nominated-representative``: a case manager confirms the
  person the gateway proposed (or another the patient appointed) as the patient's nominated
  representative (s14); answers with the RelatedPerson, which now carries the role.
* ``GET /Patient/{id}/$records``: the patient's own records as the patient may receive them
  (s25): a ``collection`` Bundle without what a professional withheld, with the notice of the
  right to apply to the Board (an OperationOutcome entry).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from fhir_gateway import clock
from fhir_gateway.api.deps import CallerDep, DatabaseDep
from fhir_gateway.api.responses import fhir_json, version_headers
from fhir_gateway.services.mhca import confirm_representative, patient_records

__all__ = ["router"]

router = APIRouter(tags=["mental-healthcare-act"])


@router.post("/RelatedPerson/{res_id}/$confirm-nominated-representative")
def confirm(res_id: str, db: DatabaseDep, caller: CallerDep) -> Response:
    stored = db.write(confirm_representative, res_id, caller, clock.now())
    return fhir_json(stored.content, headers=version_headers(stored))


@router.get("/Patient/{res_id}/$records")
def records(res_id: str, db: DatabaseDep, caller: CallerDep) -> Response:
    return fhir_json(db.read(patient_records, res_id, caller, clock.now()))
