"""Who a recipient is, for 42 CFR Part 2 (2024 rule): the partner directory's marks and the
treating relationship.

The directory marks each Organization in ``Organization.type`` with codes of the gateway's
``part2-recipient`` system:

* ``treating-provider``: it treats patients (a clinic, a programme, a crisis service). Only such
  a recipient can be reached by a consent that names the class "my treating providers"
  (42 CFR 2.31(a)(4)(ii)); housing, vocational and peer partners are not, and must be named;
* ``covered-entity`` / ``business-associate``: a HIPAA covered entity or business associate,
  which may redisclose what it receives as HIPAA allows (42 CFR 2.33(b)): its copies carry no
  NORDSCLCD refrain.

An Organization without these codes is neither (the protective answer).

A **treating relationship** with the patient (what a class consent also needs) is, here: the
organisation holds a referral of the patient — it owns a Task whose ``for`` is the patient and
that it has not rejected and that was not cancelled or entered in error — or it is a participant
of one of the patient's CareTeams. The care team refers the patient to it for care; that referral
(and nothing the organisation does on its own) creates the relationship.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "PART2_RECIPIENT",
    "TREATING_PROVIDER",
    "COVERED_ENTITY",
    "BUSINESS_ASSOCIATE",
    "NOT_RELATED_STATUSES",
    "Recipient",
    "recipient_marks",
]

PART2_RECIPIENT = "http://fhir-gateway.org/fhir/CodeSystem/part2-recipient"
TREATING_PROVIDER = "treating-provider"
COVERED_ENTITY = "covered-entity"
BUSINESS_ASSOCIATE = "business-associate"
NOT_RELATED_STATUSES = ("rejected", "cancelled", "entered-in-error")  # a referral that binds none


@dataclass(frozen=True, slots=True)
class Recipient:
    """A recipient of the patient's data: its reference, the directory's marks, and whether it has
    a treating relationship with the patient in question."""

    reference: str  # Organization/ID, RelatedPerson/ID, …
    treating_provider: bool = False
    hipaa: bool = False  # a covered entity or a business associate
    related: bool = False

    @property
    def in_treating_class(self) -> bool:
        """Reached by a consent to "every treating provider of the patient"."""
        return self.treating_provider and self.related


def recipient_marks(organization: dict[str, Any] | None) -> tuple[bool, bool]:
    """(treating provider, covered entity or business associate) from an Organization's types."""
    codes = {
        str(c.get("code"))
        for concept in (organization or {}).get("type") or []
        if isinstance(concept, dict)
        for c in concept.get("coding") or []
        if isinstance(c, dict) and c.get("system") == PART2_RECIPIENT
    }
    return TREATING_PROVIDER in codes, bool(codes & {COVERED_ENTITY, BUSINESS_ASSOCIATE})
