"""Conditional create, update, patch and delete; the conditional-create race on a real database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

FHIR = {"Content-Type": "application/fhir+json"}


def patient(mrn: str, **extra):  # type: ignore[no-untyped-def]
    return {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": mrn}], **extra}


def test_if_none_exist_creates_once_then_returns_the_match(client):
    first = client.post(
        "/Patient", json=patient("A1"), headers={**FHIR, "If-None-Exist": "identifier=urn:mrn|A1"}
    )
    second = client.post(
        "/Patient", json=patient("A1"), headers={**FHIR, "If-None-Exist": "identifier=urn:mrn|A1"}
    )
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert client.get("/Patient", params={"identifier": "urn:mrn|A1"}).json()["total"] == 1


def test_a_matched_conditional_create_ignores_its_body_and_an_unmatched_one_is_validated(client):
    # FHIR: one match and the server ignores the post; its body is not validated either (the
    # matched entries of every message, its facility and doctors, cost no validation). Only the
    # type is checked, and the same body without a match is refused as invalid.
    first = client.post("/Patient", json=patient("B1"), headers=FHIR)
    invalid = patient("B1", gender="bogus")
    matched = client.post(
        "/Patient", json=invalid, headers={**FHIR, "If-None-Exist": "identifier=urn:mrn|B1"}
    )
    assert matched.status_code == 200
    assert matched.json() == client.get(f"/Patient/{first.json()['id']}").json()
    unmatched = client.post(
        "/Patient",
        json=patient("B2", gender="bogus"),
        headers={**FHIR, "If-None-Exist": "identifier=urn:mrn|B2"},
    )
    assert unmatched.status_code == 400
    wrong_type = client.post(
        "/Patient",
        json={"resourceType": "Group", "identifier": [{"system": "urn:mrn", "value": "B1"}]},
        headers={**FHIR, "If-None-Exist": "identifier=urn:mrn|B1"},
    )
    assert wrong_type.status_code == 400


def test_if_none_exist_with_several_matches_is_412(client):
    client.post("/Patient", json=patient("dup"), headers=FHIR)
    client.post("/Patient", json=patient("dup"), headers=FHIR)
    response = client.post(
        "/Patient", json=patient("dup"), headers={**FHIR, "If-None-Exist": "identifier=urn:mrn|dup"}
    )
    assert response.status_code == 412


def test_fifty_concurrent_identical_conditional_creates_leave_one(client):
    headers = {**FHIR, "If-None-Exist": "identifier=urn:mrn|RACE"}

    def post(_: int) -> tuple[int, str]:
        response = client.post("/Patient", json=patient("RACE"), headers=headers)
        return response.status_code, response.json().get("id", "")

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(post, range(50)))
    statuses = sorted(s for s, _ in results)
    assert statuses.count(201) == 1, statuses
    assert set(statuses) <= {200, 201}
    assert len({i for _, i in results}) == 1
    assert client.get("/Patient", params={"identifier": "urn:mrn|RACE"}).json()["total"] == 1


def test_conditional_create_after_the_match_was_deleted_creates_again(client):
    headers = {**FHIR, "If-None-Exist": "identifier=urn:mrn|Z"}
    first = client.post("/Patient", json=patient("Z"), headers=headers).json()
    client.delete(f"/Patient/{first['id']}")
    again = client.post("/Patient", json=patient("Z"), headers=headers)
    assert again.status_code == 201
    assert again.json()["id"] != first["id"]


def test_conditional_update_creates_then_updates_the_match(client):
    created = client.put(
        "/Patient?identifier=urn:mrn|C1", json=patient("C1", gender="male"), headers=FHIR
    )
    assert created.status_code == 201
    updated = client.put(
        "/Patient?identifier=urn:mrn|C1", json=patient("C1", gender="female"), headers=FHIR
    )
    assert updated.status_code == 200
    assert updated.json()["id"] == created.json()["id"]
    assert updated.json()["gender"] == "female"


def test_conditional_update_with_several_matches_is_412(client):
    client.post("/Patient", json=patient("M"), headers=FHIR)
    client.post("/Patient", json=patient("M"), headers=FHIR)
    response = client.put("/Patient?identifier=urn:mrn|M", json=patient("M"), headers=FHIR)
    assert response.status_code == 412


def test_conditional_delete(client):
    created = client.post("/Patient", json=patient("D"), headers=FHIR).json()
    response = client.delete("/Patient", params={"identifier": "urn:mrn|D"})
    assert response.status_code in (200, 204)
    assert client.get(f"/Patient/{created['id']}").status_code == 410
    assert client.delete("/Patient", params={"identifier": "urn:mrn|D"}).status_code == 204


def test_json_patch(client):
    created = client.post("/Patient", json=patient("P", gender="male"), headers=FHIR).json()
    response = client.patch(
        f"/Patient/{created['id']}",
        json=[
            {"op": "replace", "path": "/gender", "value": "female"},
            {"op": "add", "path": "/active", "value": True},
        ],
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 200
    assert response.json()["gender"] == "female"
    assert response.json()["active"] is True
    assert response.json()["meta"]["versionId"] == "2"


def test_json_patch_that_fails_is_422_and_changes_nothing(client):
    created = client.post("/Patient", json=patient("P2"), headers=FHIR).json()
    response = client.patch(
        f"/Patient/{created['id']}",
        json=[{"op": "test", "path": "/gender", "value": "male"}],
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 422
    assert client.get(f"/Patient/{created['id']}").json()["meta"]["versionId"] == "1"


def test_json_patch_producing_an_invalid_resource_is_400(client):
    created = client.post("/Patient", json=patient("P3"), headers=FHIR).json()
    response = client.patch(
        f"/Patient/{created['id']}",
        json=[{"op": "add", "path": "/birthDate", "value": "yesterday"}],
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 400


def test_fhirpath_patch_conditional(client):
    created = client.post("/Patient", json=patient("FP"), headers=FHIR).json()
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "add"},
                    {"name": "path", "valueString": "Patient"},
                    {"name": "name", "valueString": "birthDate"},
                    {"name": "value", "valueDate": "1970-01-02"},
                ],
            }
        ],
    }
    response = client.patch("/Patient?identifier=urn:mrn|FP", json=parameters, headers=FHIR)
    assert response.status_code == 200
    assert client.get(f"/Patient/{created['id']}").json()["birthDate"] == "1970-01-02"


def test_patch_of_unknown_resource_is_404(client):
    response = client.patch(
        "/Patient/none", json=[], headers={"Content-Type": "application/json-patch+json"}
    )
    assert response.status_code == 404
