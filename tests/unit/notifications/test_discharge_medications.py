"""A discharge notification's medications belong to the discharge: linked to its Encounter and,
when the sender gave no category, filed as discharge orders; what the sender said is kept."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson

from adapters.notifications import read_notification

DAVINCI = Path(__file__).resolve().parents[2] / "data" / "fhir" / "davinci"
ENCOUNTER = "urn:uuid:5fe62cd5-bfcf-4d3b-a1e9-80d6f75d6f82"
PATIENT = "urn:uuid:06e1f0dd-5fbe-4480-9bb4-6b54ec02d31b"


def _with_medications(event: str = "notification-discharge") -> dict[str, Any]:
    bundle = orjson.loads((DAVINCI / "discharge-notification-message-bundle-01.json").read_bytes())
    bundle["entry"][0]["resource"]["eventCoding"]["code"] = event
    drug = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "352309"}]}
    bundle["entry"] += [
        {
            "fullUrl": "urn:uuid:2b7d4f8e-8a1c-4c55-9d6e-0c1f7a5e1a01",
            "resource": {
                "resourceType": "MedicationRequest",
                "identifier": [{"system": "http://example.org/rx", "value": "RX-1"}],
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": drug,
                "subject": {"reference": PATIENT},
            },
        },
        {
            "fullUrl": "urn:uuid:2b7d4f8e-8a1c-4c55-9d6e-0c1f7a5e1a02",
            "resource": {
                "resourceType": "MedicationRequest",
                "identifier": [{"system": "http://example.org/rx", "value": "RX-2"}],
                "status": "active",
                "intent": "order",
                "category": [{"text": "community"}],
                "encounter": {"reference": "Encounter/elsewhere"},
                "medicationCodeableConcept": drug,
                "subject": {"reference": PATIENT},
            },
        },
        {
            "fullUrl": "urn:uuid:2b7d4f8e-8a1c-4c55-9d6e-0c1f7a5e1a03",
            "resource": {
                "resourceType": "MedicationStatement",
                "status": "active",
                "medicationCodeableConcept": drug,
                "subject": {"reference": PATIENT},
            },
        },
    ]
    return bundle


def _written(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    entries = read_notification(copy.deepcopy(bundle)).transaction["entry"]
    return [e["resource"] for e in entries if e["resource"].get("resourceType") == kind]


def test_discharge_medications_are_linked_to_the_discharge_encounter() -> None:
    bundle = _with_medications()
    first, *_, given = _written(bundle, "MedicationRequest")
    assert first["encounter"] == {"reference": ENCOUNTER}
    assert first["category"][0]["coding"][0]["code"] == "discharge"
    assert given["encounter"] == {"reference": "Encounter/elsewhere"}  # the sender's, kept
    assert given["category"] == [{"text": "community"}]
    [statement] = _written(bundle, "MedicationStatement")
    assert statement["context"] == {"reference": ENCOUNTER}


def test_an_admit_notifications_medications_are_not_discharge_medications() -> None:
    [request, *_] = _written(_with_medications("notification-admit"), "MedicationRequest")
    assert "encounter" not in request and "category" not in request
