"""The patient asks to stop (through a case manager, the API or the patient page): the use case
with the caller's rights. The caller must be able to see the patient (else 404, as for a patient
that does not exist) and to update CommunicationRequests."""

from __future__ import annotations

from sqlalchemy.orm import Session

from fhir_gateway.contacts._series import stop
from fhir_gateway.context import Caller
from fhir_gateway.errors import Forbidden
from fhir_gateway.services import resources as svc

__all__ = ["stop_for_patient"]


def stop_for_patient(session: Session, patient_id: str, caller: Caller) -> int:
    """Revoke the patient's remaining caring contacts; returns how many were revoked."""
    svc.read(session, "Patient", patient_id, caller)  # 404 when the caller may not see them
    if not caller.can("CommunicationRequest", "u"):
        raise Forbidden("Not permitted: stopping caring contacts updates CommunicationRequest")
    return stop(session, f"Patient/{patient_id}", "The patient asked to stop caring contacts")
