"""Discharge planning (MHCA s98): who must take part, and who did.

Before a discharge the psychiatrist in charge consults, and the plan is developed with (s98(1),
(2)), whoever of these the patient has:

* the patient;
* the nominated representative (``_mhca_representative``); while none is confirmed that gap
  stands too, so that the proposal is dealt with;
* the family member or care-giver with whom the patient will reside: a RelatedPerson coded
  ``MHCA_SYSTEM|resides-with``; when nobody is so coded, any relative or care-giver of the patient
  will do; a patient with no one recorded has nobody to consult here;
* the psychiatrist who will be responsible for the patient's care after discharge: a
  Practitioner, PractitionerRole or Organization other than the case manager.

Who took part is the plan's ``CarePlan.contributor`` (FHIR: who provided the plan's content); a
case manager records it (PUT or PATCH of the CarePlan). A plan without them is flagged
(``discharge_planning_gaps``), never refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir_gateway.privacy._mhca import RESIDES_WITH, has_mhca_code
from fhir_gateway.privacy._mhca_representative import (
    is_caregiver,
    is_relative,
    nominated_representative,
)

__all__ = ["discharge_planning_gaps", "DISCHARGE_PLANNING_PATH"]

DISCHARGE_PLANNING_PATH = "CarePlan.contributor"
_PROFESSIONALS = ("Practitioner/", "PractitionerRole/", "Organization/")


def _refs(values: Iterable[Any]) -> set[str]:
    return {
        str(v.get("reference"))
        for v in values
        if isinstance(v, dict) and isinstance(v.get("reference"), str)
    }


def discharge_planning_gaps(
    plan: dict[str, Any],
    related_persons: list[dict[str, Any]],
    *,
    case_manager: str,
) -> list[str]:
    """Who s98 says should have taken part in the plan and is not among its contributors (in
    words, in the Act's order); empty when the plan records everyone."""
    took_part = _refs(plan.get("contributor") or [])
    gaps = []
    patient = (plan.get("subject") or {}).get("reference")
    if patient not in took_part:
        gaps.append("the patient")
    representative = nominated_representative(related_persons)
    if representative is None:
        gaps.append("the nominated representative (none is confirmed yet)")
    elif representative not in took_part:
        gaps.append(f"the nominated representative ({representative})")
    people = [p for p in related_persons if p.get("active") is not False]
    residing = [p for p in people if has_mhca_code(p.get("relationship"), RESIDES_WITH)]
    family = residing or [p for p in people if is_relative(p) or is_caregiver(p)]
    if family and not {f"RelatedPerson/{p['id']}" for p in family} & took_part:
        gaps.append("the family member or care-giver the patient will live with")
    if not any(ref.startswith(_PROFESSIONALS) and ref != case_manager for ref in took_part):
        gaps.append("the psychiatrist who will be responsible for care after discharge")
    return gaps
