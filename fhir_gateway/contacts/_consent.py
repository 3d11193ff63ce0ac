"""May the gateway send caring contacts to this patient? (pure)

The default is **no**: caring contacts go only to a patient who said yes, recorded as a Consent
(the protective answer of DESIGN decision 10; a message about one's mental health reaching a
shared phone or mailbox is itself a disclosure). The Consent:

- ``status`` active, ``patient`` the Patient, ``scope`` treatment (consentscope);
- ``category`` the gateway's ``caring-contacts|caring-contact`` coding (beside LOINC 59284-0);
- ``provision.type`` permit, ``provision.period`` optional (none: until withdrawn).

Withdrawing it (status ``inactive``, ``rejected`` or ``entered-in-error``, a period that ended, or
a caring-contacts Consent whose provision is ``deny``) stops the series: the remaining requests
are revoked and queued messages are never sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir_gateway.contacts._codes import CARING_CONTACT, CONTACTS_SYSTEM, is_caring

__all__ = ["permits_contact", "caring_consent"]


def _in_period(provision: dict[str, Any], at: datetime) -> bool:
    period = provision.get("period") or {}
    day = at.date().isoformat()
    start, end = str(period.get("start") or ""), str(period.get("end") or "")
    return (not start or start[:10] <= day) and (not end or end[:10] >= day)


def permits_contact(consents: list[dict[str, Any]], at: datetime) -> bool:
    """``consents``: the patient's active Consents. Yes when a caring-contacts one permits it now
    and none denies it (a denial wins, whatever its dates)."""
    mine = [c for c in consents if c.get("status") == "active" and is_caring(c)]
    if any((c.get("provision") or {}).get("type") == "deny" for c in mine):
        return False
    return any(
        (c.get("provision") or {}).get("type") == "permit" and _in_period(c["provision"], at)
        for c in mine
    )


def caring_consent(patient: str, *, signed: str, consent_id: str | None = None) -> dict[str, Any]:
    """The Consent a form or a test records when the patient agrees to caring contacts."""
    doc: dict[str, Any] = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "treatment",
                }
            ]
        },
        "category": [
            {"coding": [{"system": "http://loinc.org", "code": "59284-0"}]},
            {
                "coding": [
                    {"system": CONTACTS_SYSTEM, "code": CARING_CONTACT, "display": "Caring contact"}
                ]
            },
        ],
        "patient": {"reference": patient},
        "dateTime": signed,
        "policyRule": {"text": "Caring contacts after discharge, by the patient's choice"},
        "provision": {"type": "permit"},
    }
    if consent_id:
        doc["id"] = consent_id
    return doc
