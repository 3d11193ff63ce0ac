"""The caring contacts' codes, extension URLs and outbox channel names, in one place."""

from __future__ import annotations

from typing import Any

__all__ = [
    "CONTACTS_SYSTEM",
    "CARING_CONTACT",
    "STOP",
    "SERIES_SYSTEM",
    "MESSAGE_EXT",
    "CRISIS_EXT",
    "OUTBOX_EXT",
    "PLAN_ID",
    "ACTIVITY_ID",
    "EMAIL",
    "SMS",
    "CHANNELS",
    "MEDIUM",
    "PARTICIPATION_MODE",
    "category",
    "is_caring",
]

CONTACTS_SYSTEM = "http://fhir-gateway.org/fhir/CodeSystem/caring-contacts"
CARING_CONTACT = "caring-contact"  # CommunicationRequest/Communication.category, Consent.category
STOP = "stop"  # a reply's reasonCode: the patient asks to end the series
SERIES_SYSTEM = "http://fhir-gateway.org/fhir/caring-contact-series"  # groupIdentifier.system
_SD = "http://fhir-gateway.org/fhir/StructureDefinition/"
MESSAGE_EXT = _SD + "caring-contact-message"
CRISIS_EXT = _SD + "caring-contact-crisis-line"
OUTBOX_EXT = _SD + "caring-contact-outbox"  # on a request: the outbox row that carries it
PLAN_ID = "caring-contacts"  # PlanDefinition/caring-contacts: the schedule
ACTIVITY_ID = "caring-contact"  # ActivityDefinition/caring-contact: the messages

# media: the Patient.telecom system each reaches, and the outbox channel that carries it
EMAIL = "email"
SMS = "sms"
CHANNELS = {EMAIL: "caring-email", SMS: "caring-webhook"}
PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
MEDIUM = {
    EMAIL: {"system": PARTICIPATION_MODE, "code": "EMAILWRIT", "display": "email"},
    SMS: {"system": PARTICIPATION_MODE, "code": "SMSWRIT", "display": "SMS message"},
}


def category() -> dict[str, Any]:
    return {
        "coding": [{"system": CONTACTS_SYSTEM, "code": CARING_CONTACT, "display": "Caring contact"}]
    }


def is_caring(doc: dict[str, Any] | None) -> bool:
    """A CommunicationRequest, Communication or Consent about caring contacts."""
    return any(
        c.get("system") == CONTACTS_SYSTEM and c.get("code") == CARING_CONTACT
        for concept in (doc or {}).get("category") or []
        for c in concept.get("coding") or []
    )
