"""Coded reasons a partner gives for rejecting a referral (``Task.statusReason``).

The SDOH Clinical Care IG asks for a statusReason with rejected/cancelled/on-hold/failed but binds
no value set to it, so the gateway publishes its own small code system (stable: clients may rely
on it) with the reasons community partners give.
"""

from __future__ import annotations

from typing import Any

__all__ = ["REJECT_REASONS", "REJECT_SYSTEM", "reject_reason"]

REJECT_SYSTEM = "http://fhir-gateway.org/fhir/CodeSystem/referral-reject-reason"
REJECT_REASONS: dict[str, str] = {
    "no-capacity": "No capacity to take the referral",
    "not-eligible": "The patient is not eligible for the service",
    "service-not-offered": "The service asked for is not offered",
    "outside-area": "The patient lives outside the service area",
    "patient-declined": "The patient declined the service",
    "unable-to-contact": "Unable to contact the patient",
    "other": "Other reason",
}


def reject_reason(code: str, note: str = "") -> dict[str, Any]:
    """The CodeableConcept for ``code`` (KeyError for an unknown one)."""
    display = REJECT_REASONS[code]
    concept: dict[str, Any] = {
        "coding": [{"system": REJECT_SYSTEM, "code": code, "display": display}]
    }
    concept["text"] = f"{display}: {note}" if note else display
    return concept
