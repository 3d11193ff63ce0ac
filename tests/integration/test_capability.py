"""GET /metadata is generated from what is served, and what it claims works."""

from __future__ import annotations

import pytest

from fhir_gateway.fhir.types import RESOURCE_TYPES

SAMPLE = {
    "string": "x",
    "token": "x",
    "reference": "Patient/x",
    "date": "2020",
    "number": "1",
    "quantity": "1",
    "uri": "http://x",
    "composite": None,
    "special": None,
}


def test_capability_statement_lists_every_type_with_its_interactions(client):
    body = client.get("/metadata").json()
    assert body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"] == "4.0.1"
    rest = body["rest"][0]
    assert sorted(r["type"] for r in rest["resource"]) == sorted(RESOURCE_TYPES)
    codes = {i["code"] for i in rest["resource"][0]["interaction"]}
    assert codes == {
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    }
    assert {i["code"] for i in rest["interaction"]} == {
        "transaction",
        "batch",
        "history-system",
        "search-system",
    }


@pytest.mark.parametrize("res_type", ["Patient", "Task", "CarePlan", "Encounter", "ServiceRequest"])
def test_every_advertised_search_parameter_is_accepted(client, res_type):
    body = client.get("/metadata").json()
    resource = next(r for r in body["rest"][0]["resource"] if r["type"] == res_type)
    assert resource["searchParam"], res_type
    for param in resource["searchParam"]:
        value = SAMPLE.get(param["type"])
        if value is None:
            continue
        response = client.get(
            f"/{res_type}", params={param["name"]: value}, headers={"Prefer": "handling=strict"}
        )
        assert response.status_code == 200, (param, response.text)


def test_advertised_includes_are_accepted(client):
    body = client.get("/metadata").json()
    careplan = next(r for r in body["rest"][0]["resource"] if r["type"] == "CarePlan")
    assert "CarePlan:goal" in careplan["searchInclude"]
    for include in careplan["searchInclude"]:
        response = client.get("/CarePlan", params={"_include": include})
        assert response.status_code == 200, (include, response.text)


def test_operations_are_advertised_where_they_are_served(client):
    rest = client.get("/metadata").json()["rest"][0]
    assert {
        "name": "process-message",
        "definition": "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message",
    } in rest["operation"]
    plan_definition = next(r for r in rest["resource"] if r["type"] == "PlanDefinition")
    assert [op["name"] for op in plan_definition["operation"]] == ["apply"]
    patient = next(r for r in rest["resource"] if r["type"] == "Patient")
    # the Part 2 accounting (42 CFR 2.24), the patient's own records (MHCA s25) and stopping
    # caring contacts at the patient's request
    assert sorted(op["name"] for op in patient["operation"]) == [
        "disclosures",
        "records",
        "stop-caring-contacts",
    ]
    task = next(r for r in rest["resource"] if r["type"] == "Task")
    assert "operation" not in task


def test_auditevent_claims_what_the_trail_serves(client):
    """AuditEvent is answered from the audit trail: exactly its parameters, no includes, no
    history; each claimed parameter is accepted."""
    from fhir_gateway.security import AUDIT_SEARCH_PARAMS

    rest = client.get("/metadata").json()["rest"][0]
    audit = next(r for r in rest["resource"] if r["type"] == "AuditEvent")
    assert {p["name"]: p["type"] for p in audit["searchParam"]} == AUDIT_SEARCH_PARAMS
    assert {p["name"] for p in audit["searchParam"]} >= {"_id", "_lastUpdated", "patient"}
    assert all(p["definition"].startswith("http://hl7.org/fhir/") for p in audit["searchParam"])
    assert {i["code"] for i in audit["interaction"]} == {"read", "search-type", "create"}
    assert "searchInclude" not in audit and "searchRevInclude" not in audit
    patient = next(r for r in rest["resource"] if r["type"] == "Patient")
    assert not [r for r in patient["searchRevInclude"] if r.startswith("AuditEvent:")]
    for param in audit["searchParam"]:
        value = SAMPLE[param["type"]]
        response = client.get("/AuditEvent", params={param["name"]: value})
        assert response.status_code == 200, (param, response.text)
    assert client.get("/AuditEvent", params={"date": "2020-13"}).status_code == 400
    assert client.get("/AuditEvent", params={"agent-name": "x"}).status_code == 400
