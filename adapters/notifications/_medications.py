"""Discharge medications in a discharge notification: a MedicationRequest or MedicationStatement
the message carries belongs to the discharge. One that names no encounter is linked to the
discharge Encounter (``MedicationRequest.encounter``, ``MedicationStatement.context``), and a
MedicationRequest without a category is a discharge order (medicationrequest-category
``discharge``). What the sender said explicitly is never changed."""

from __future__ import annotations

from typing import Any

__all__ = ["DISCHARGE_CATEGORY", "discharge_encounter", "link_discharge_medication"]

DISCHARGE_CATEGORY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
            "code": "discharge",
            "display": "Discharge",
        }
    ]
}
_LINK = {"MedicationRequest": "encounter", "MedicationStatement": "context"}


def discharge_encounter(header: dict[str, Any], entries: list[dict[str, Any]]) -> str | None:
    """The fullUrl of the discharge Encounter: the one MessageHeader.focus names, else the only
    Encounter of the message (None when there is none, or several and no focus says which)."""
    encounters = {
        str(e.get("fullUrl")): e["resource"]
        for e in entries
        if isinstance(e.get("resource"), dict)
        and e["resource"].get("resourceType") == "Encounter"
        and e.get("fullUrl")
    }
    by_id = {f"Encounter/{r.get('id')}": url for url, r in encounters.items() if r.get("id")}
    focuses = header.get("focus")
    for focus in focuses if isinstance(focuses, list) else []:  # any shape a sender may send
        ref = focus.get("reference") if isinstance(focus, dict) else None
        if isinstance(ref, str) and (ref in encounters or ref in by_id):
            return ref if ref in encounters else by_id[ref]
    return next(iter(encounters)) if len(encounters) == 1 else None


def link_discharge_medication(resource: dict[str, Any], encounter: str | None) -> None:
    """Link a discharge medication to its Encounter and category (in place)."""
    link = _LINK.get(str(resource.get("resourceType")))
    if link is None:
        return
    if encounter is not None and not resource.get(link):
        resource[link] = {"reference": encounter}
    if resource["resourceType"] == "MedicationRequest" and not resource.get("category"):
        resource["category"] = [DISCHARGE_CATEGORY]
