"""The care-plan engine through FHIR: a discharge made with the REST API, ``PlanDefinition/$apply``
(instance and type level, POST and GET; nothing stored), and templates edited through the API."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from careplan_helpers import Gateway, validate_r4b

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"


def admission(gateway: Gateway, *codes: str, status: str = "in-progress") -> tuple[str, str]:
    """Patient, Encounter and Conditions by transaction; returns (patient ref, encounter ref)."""
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:p",
                "request": {"method": "POST", "url": "Patient"},
                "resource": {
                    "resourceType": "Patient",
                    "name": [{"family": "Roe", "given": ["Rita"]}],
                    "address": [
                        {"use": "home", "city": "Springfield", "state": "IL", "postalCode": "62704"}
                    ],
                },
            },
            {
                "fullUrl": "urn:uuid:e",
                "request": {"method": "POST", "url": "Encounter"},
                "resource": {
                    "resourceType": "Encounter",
                    "status": status,
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "IMP",
                    },
                    "subject": {"reference": "urn:uuid:p"},
                    "period": {"start": "2025-06-01T10:00:00-05:00"},
                    "diagnosis": [
                        {"condition": {"reference": f"urn:uuid:c{i}"}, "rank": i + 1}
                        for i in range(len(codes))
                    ],
                },
            },
            *(
                {
                    "fullUrl": f"urn:uuid:c{i}",
                    "request": {"method": "POST", "url": "Condition"},
                    "resource": {
                        "resourceType": "Condition",
                        "subject": {"reference": "urn:uuid:p"},
                        "encounter": {"reference": "urn:uuid:e"},
                        "code": {"coding": [{"system": ICD10CM, "code": code}], "text": code},
                    },
                }
                for i, code in enumerate(codes)
            ),
        ],
    }
    response = gateway.client.post("/", json=bundle)
    assert response.status_code == 200, response.text
    locations = [e["response"]["location"] for e in response.json()["entry"]]
    patient, encounter = ("/".join(loc.split("/")[:2]) for loc in locations[:2])
    return patient, encounter


def test_finishing_an_inpatient_encounter_through_the_api_makes_a_plan(gateway: Gateway) -> None:
    patient, encounter = admission(gateway, "F31.2")
    current = gateway.read(encounter)
    finished = {
        **current,
        "status": "finished",
        "period": {**current["period"], "end": "2025-06-10T16:00:00-05:00"},
    }
    assert gateway.client.put(f"/{encounter}", json=finished).status_code == 200
    plan = gateway.plan()
    assert plan["encounter"]["reference"] == encounter and plan["subject"]["reference"] == patient
    requests = gateway.requests_of(plan)
    assert "Mood stabiliser review and level monitoring" in requests
    # no zone for this sender: UTC; 16:00 CDT is 21:00 UTC on 10 June, day 7 is 17 June
    assert (
        requests["Psychiatry follow-up visit within 7 days"]["occurrencePeriod"]["end"]
        == "2025-06-17T23:59:59+00:00"
    )
    # sending the same update again changes nothing
    before = gateway.versions()
    gateway.client.put(f"/{encounter}", json=finished)
    assert gateway.versions() == before


def apply_parameters(**values: str) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": k, "valueString": v} for k, v in values.items()],
    }


def test_apply_returns_one_care_plan_with_contained_resources_and_stores_nothing(
    gateway: Gateway,
) -> None:
    patient, encounter = admission(gateway, "F32.2", "F10.20")
    before = gateway.versions()
    response = gateway.client.post(
        "/PlanDefinition/psychiatric-discharge/$apply",
        json=apply_parameters(subject=patient, encounter=encounter),
    )
    assert response.status_code == 200, response.text
    plan = response.json()
    assert gateway.versions() == before and gateway.counts()["CarePlan"] == 0
    assert plan["resourceType"] == "CarePlan" and "id" not in plan
    assert plan["activity"] == [{"reference": {"reference": "#requestgroup"}}]
    kinds = [c["resourceType"] for c in plan["contained"]]
    assert (
        kinds.count("Goal") == 6
        and kinds.count("CareTeam") == 1
        and kinds.count("RequestGroup") == 1
    )
    assert (
        kinds.count("ServiceRequest") == kinds.count("Task") == 8
    )  # base 4, depression, substance 2, peers
    contained = {c["id"]: c for c in plan["contained"]}
    group = contained["requestgroup"]
    for action in group["action"]:
        request = contained[action["resource"]["reference"][1:]]
        task = contained[action["action"][0]["resource"]["reference"][1:]]
        assert task["focus"]["reference"] == f"#{request['id']}"
        assert request["basedOn"] == [{"reference": "#"}]
    assert all("security" not in c.get("meta", {}) and "text" not in c for c in plan["contained"])
    assert {"PSY", "ETH", "42CFRPart2", "R"} <= {s["code"] for s in plan["meta"]["security"]}
    validate_r4b(plan)


def test_apply_of_one_group_by_get(gateway: Gateway) -> None:
    patient, encounter = admission(gateway, "F33.1")
    response = gateway.client.get(
        f"/PlanDefinition/depression/$apply?subject={patient}&encounter={encounter}"
    )
    assert response.status_code == 200, response.text
    requests = [c for c in response.json()["contained"] if c["resourceType"] == "ServiceRequest"]
    assert [r["code"]["text"] for r in requests] == ["Depression symptom monitoring (PHQ-9)"]


def test_type_level_apply_uses_the_discharge_plans_on_the_patients_conditions(
    gateway: Gateway,
) -> None:
    patient, _ = admission(gateway, "F41.1")
    response = gateway.client.get(f"/PlanDefinition/$apply?subject={patient}")
    assert response.status_code == 200, response.text
    titles = {
        c["code"]["text"]
        for c in response.json()["contained"]
        if c["resourceType"] == "ServiceRequest"
    }
    assert "CBT or trauma-focused therapy" in titles


def test_apply_when_nothing_applies(gateway: Gateway) -> None:
    patient, encounter = admission(gateway, "J18.9")
    response = gateway.client.post(
        "/PlanDefinition/psychiatric-discharge/$apply",
        json=apply_parameters(subject=patient, encounter=encounter),
    )
    assert response.status_code == 200
    plan = response.json()
    assert "activity" not in plan and "No action applies" in plan["text"]["div"]


def test_apply_errors_are_operation_outcomes(gateway: Gateway) -> None:
    patient, _ = admission(gateway, "F32.2")
    missing = gateway.client.post(
        "/PlanDefinition/nope/$apply", json=apply_parameters(subject=patient)
    )
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"
    no_subject = gateway.client.post("/PlanDefinition/depression/$apply", json=apply_parameters())
    assert no_subject.status_code == 400


def test_templates_edited_through_the_api_apply_at_once(gateway: Gateway) -> None:
    patient, encounter = admission(gateway, "F32.2")
    definition = gateway.client.get("/ActivityDefinition/psychiatry-follow-up").json()
    edited = copy.deepcopy(definition)
    edited["timingRange"]["high"]["value"] = 5
    assert (
        gateway.client.put("/ActivityDefinition/psychiatry-follow-up", json=edited).status_code
        == 200
    )
    plan = gateway.client.get(
        f"/PlanDefinition/psychiatric-discharge/$apply?subject={patient}&encounter={encounter}"
    ).json()
    follow_up = next(
        c for c in plan["contained"] if c.get("code", {}).get("text") == definition["code"]["text"]
    )
    start, end = (
        follow_up["occurrencePeriod"]["start"][:10],
        follow_up["occurrencePeriod"]["end"][:10],
    )
    assert (date.fromisoformat(end) - date.fromisoformat(start)).days == 4  # day 1 to day 5


def test_a_new_plan_definition_posted_through_the_api_applies(gateway: Gateway) -> None:
    patient, encounter = admission(gateway, "F50.0")
    custom = {
        "resourceType": "PlanDefinition",
        "id": "eating-disorders",
        "url": "http://example.org/PlanDefinition/eating",
        "status": "active",
        "title": "Eating disorders",
        "action": [
            {
                "title": "Eating disorders",
                "condition": [
                    {
                        "kind": "applicability",
                        "expression": {
                            "language": "text/fhirpath",
                            "expression": "%conditions.code.coding.where(code.startsWith('F50')).exists()",
                        },
                    }
                ],
                "definitionCanonical": "http://fhir-gateway.org/fhir/ActivityDefinition/therapy-intake",
            }
        ],
    }
    assert gateway.client.put("/PlanDefinition/eating-disorders", json=custom).status_code == 201
    plan = gateway.client.get(
        f"/PlanDefinition/eating-disorders/$apply?subject={patient}&encounter={encounter}"
    ).json()
    assert [
        c["code"]["text"] for c in plan["contained"] if c["resourceType"] == "ServiceRequest"
    ] == ["Psychotherapy intake within 14 days"]
