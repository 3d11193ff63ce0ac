from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir_gateway.search.extract import extract
from fhir_gateway.search.registry import Registry, get_registry
from fhir_gateway.search.values import MAX_TIME


def _rows(resource: dict[str, Any], kind: str, param: str) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in row.items() if k != "param"}
        for row in extract(resource).get(kind, [])
        if row["param"] == param
    ]


TASK = {
    "resourceType": "Task",
    "id": "t1",
    "meta": {
        "tag": [{"system": "urn:tags", "code": "vip"}],
        "profile": ["http://example.org/sdoh-task"],
    },
    "status": "requested",
    "intent": "order",
    "code": {
        "coding": [
            {
                "system": "http://hl7.org/fhir/CodeSystem/task-code",
                "code": "fulfill",
                "display": "Fulfill",
            }
        ],
        "text": "Do it",
    },
    "for": {"reference": "Patient/p1"},
    "focus": {"reference": "ServiceRequest/sr1/_history/2"},
    "owner": {"reference": "Organization/o1", "identifier": {"system": "urn:npi", "value": "123"}},
    "requester": {"reference": "#contained-practitioner"},
    "authoredOn": "2024-03-05T10:00:00+02:00",
    "executionPeriod": {"start": "2024-03"},
}


def test_references_are_typed_and_contained_ones_skipped() -> None:
    assert _rows(TASK, "reference", "owner") == [
        {"target_type": "Organization", "target_id": "o1", "url": None}
    ]
    assert _rows(TASK, "reference", "focus") == [
        {"target_type": "ServiceRequest", "target_id": "sr1", "url": None}
    ]
    assert _rows(TASK, "reference", "requester") == []


def test_resolve_is_patient_keeps_only_patient_references() -> None:
    assert _rows(TASK, "reference", "patient") == [
        {"target_type": "Patient", "target_id": "p1", "url": None}
    ]
    group_task = {**TASK, "for": {"reference": "Group/g1"}}
    assert _rows(group_task, "reference", "patient") == []
    assert _rows(group_task, "reference", "subject")[0]["target_type"] == "Group"


def test_reference_identifier_is_indexed_for_the_identifier_modifier() -> None:
    assert _rows(TASK, "token", "owner:identifier") == [
        {"system": "urn:npi", "code": "123", "text": None}
    ]


def test_tokens_from_codeable_concept_code_and_meta() -> None:
    assert {
        "system": "http://hl7.org/fhir/CodeSystem/task-code",
        "code": "fulfill",
        "text": "fulfill",
    } in _rows(TASK, "token", "code")
    assert {"system": None, "code": None, "text": "do it"} in _rows(TASK, "token", "code")
    assert _rows(TASK, "token", "status") == [{"system": None, "code": "requested", "text": None}]
    assert _rows(TASK, "token", "_tag") == [{"system": "urn:tags", "code": "vip", "text": None}]
    assert _rows(TASK, "uri", "_profile") == [{"value": "http://example.org/sdoh-task"}]


def test_dates_are_utc_ranges_and_open_periods_reach_the_end_of_time() -> None:
    assert _rows(TASK, "date", "authored-on") == [
        {"low": datetime(2024, 3, 5, 8), "high": datetime(2024, 3, 5, 8, 0, 1)}
    ]
    assert _rows(TASK, "date", "period") == [{"low": datetime(2024, 3, 1), "high": MAX_TIME}]


def test_patient_strings_tokens_and_choice_types() -> None:
    patient = {
        "resourceType": "Patient",
        "name": [{"family": "Müller", "given": ["Ána"]}],
        "telecom": [
            {"system": "email", "value": "a@example.org"},
            {"system": "phone", "value": "555"},
        ],
        "identifier": [{"system": "urn:mrn", "value": "42"}],
        "active": True,
        "deceasedDateTime": "2024-01-02",
        "birthDate": "1980",
    }
    assert {"value": "muller", "exact": "Müller"} in _rows(patient, "string", "name")
    assert {"value": "ana", "exact": "Ána"} in _rows(patient, "string", "given")
    assert _rows(patient, "token", "email") == [
        {"system": "email", "code": "a@example.org", "text": None}
    ]
    assert _rows(patient, "token", "identifier") == [
        {"system": "urn:mrn", "code": "42", "text": None}
    ]
    assert _rows(patient, "token", "active") == [{"system": None, "code": "true", "text": None}]
    assert _rows(patient, "date", "death-date") == [
        {"low": datetime(2024, 1, 2), "high": datetime(2024, 1, 3)}
    ]
    assert _rows(patient, "date", "birthdate") == [
        {"low": datetime(1980, 1, 1), "high": datetime(1981, 1, 1)}
    ]


def test_quantity_of_type_and_implicit_precision() -> None:
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "valueQuantity": {
            "value": 120.5,
            "unit": "mmHg",
            "system": "http://unitsofmeasure.org",
            "code": "mm[Hg]",
        },
    }
    (row,) = _rows(obs, "quantity", "value-quantity")
    assert (row["value"], row["low"], row["high"]) == (120.5, 120.45, 120.55)
    assert (row["system"], row["code"], row["unit"]) == (
        "http://unitsofmeasure.org",
        "mm[Hg]",
        "mmHg",
    )
    assert (
        _rows({**obs, "valueString": "x", "valueQuantity": None}, "quantity", "value-quantity")
        == []
    )


def test_a_user_defined_parameter_is_extracted_after_registration() -> None:
    registry = Registry([], ["Task"])
    registry.add(
        {
            "resourceType": "SearchParameter",
            "code": "deadline",
            "base": ["Task"],
            "type": "date",
            "expression": "Task.restriction.period.end",
        }
    )
    task = {"resourceType": "Task", "restriction": {"period": {"end": "2024-04-01"}}}
    assert extract(task, registry) == {
        "date": [{"low": datetime(2024, 4, 1), "high": datetime(2024, 4, 2), "param": "deadline"}]
    }
    assert get_registry().get("Task", "deadline") is None  # the shared registry is untouched
