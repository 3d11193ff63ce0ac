"""The patient page's caring-contacts section: how many messages went, how many are still to
come and when the next one goes; the case manager stops the rest when the patient asks
(``contacts.stop_for_patient``, with the user's rights). Only what the reader may see counts."""

from __future__ import annotations

from dataclasses import dataclass

from fhir_gateway.contacts import is_caring
from fhir_gateway.web._patient_reader import PatientReader

__all__ = ["CaringContacts", "caring_contacts"]

_AHEAD = frozenset({"active", "on-hold"})


@dataclass(frozen=True, slots=True)
class CaringContacts:
    sent: int
    remaining: int
    next_at: str  # when the next one goes, in the facility's zone ("" when none is left)
    stopped: int  # revoked: on the patient's request, a STOP reply or a withdrawn consent


def caring_contacts(reader: PatientReader) -> CaringContacts | None:
    requests = [r for r in reader.of_patient("CommunicationRequest") if is_caring(r)]
    if not requests:
        return None
    ahead = sorted(
        str(r.get("occurrenceDateTime") or "") for r in requests if r.get("status") in _AHEAD
    )
    return CaringContacts(
        sent=sum(r.get("status") == "completed" for r in requests),
        remaining=len(ahead),
        next_at=reader.clock.when(ahead[0]) if ahead and ahead[0] else "",
        stopped=sum(r.get("status") == "revoked" for r in requests),
    )
