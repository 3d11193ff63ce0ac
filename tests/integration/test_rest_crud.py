"""read, vread, create, update, delete and their headers, against the real app and database."""

from __future__ import annotations

PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-1"}],
    "name": [{"family": "Rivera", "given": ["Ana"]}],
    "birthDate": "1990-04-01",
}
FHIR = {"Content-Type": "application/fhir+json"}


def create(client, resource=PATIENT, **headers):  # type: ignore[no-untyped-def]
    return client.post(f"/{resource['resourceType']}", json=resource, headers={**FHIR, **headers})


def test_create_assigns_id_and_answers_with_location_etag_and_last_modified(client):
    response = create(client, {**PATIENT, "id": "client-chosen"})
    assert response.status_code == 201
    body = response.json()
    assert body["id"] != "client-chosen"
    assert body["meta"]["versionId"] == "1"
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["location"].endswith(f"/Patient/{body['id']}/_history/1")
    assert response.headers["last-modified"].endswith("GMT")
    assert response.headers["content-type"].startswith("application/fhir+json")


def test_read_returns_the_stored_resource(client):
    created = create(client).json()
    response = client.get(f"/Patient/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["etag"] == 'W/"1"'


def test_read_unknown_is_404_operation_outcome(client):
    response = client.get("/Patient/nope")
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.json()["issue"][0]["code"] == "not-found"


def test_unknown_type_is_404_not_supported(client):
    response = client.get("/Spaceship/1")
    assert response.status_code == 404
    assert response.json()["issue"][0]["code"] == "not-supported"


def test_update_makes_a_new_version_and_vread_keeps_the_old(client):
    created = create(client).json()
    changed = {**created, "birthDate": "1991-05-02"}
    response = client.put(f"/Patient/{created['id']}", json=changed, headers=FHIR)
    assert response.status_code == 200
    assert response.json()["meta"]["versionId"] == "2"
    old = client.get(f"/Patient/{created['id']}/_history/1").json()
    new = client.get(f"/Patient/{created['id']}/_history/2").json()
    assert old["birthDate"] == "1990-04-01"
    assert new["birthDate"] == "1991-05-02"


def test_update_with_unchanged_content_keeps_the_version(client):
    created = create(client).json()
    response = client.put(f"/Patient/{created['id']}", json=created, headers=FHIR)
    assert response.status_code == 200
    assert response.json()["meta"]["versionId"] == "1"
    assert client.get(f"/Patient/{created['id']}/_history").json()["total"] == 1


def test_update_creates_with_client_id(client):
    response = client.put("/Patient/abc-1", json={**PATIENT, "id": "abc-1"}, headers=FHIR)
    assert response.status_code == 201
    assert response.headers["location"].endswith("/Patient/abc-1/_history/1")
    assert client.get("/Patient/abc-1").status_code == 200


def test_update_with_mismatched_id_is_400(client):
    response = client.put("/Patient/abc-1", json={**PATIENT, "id": "other"}, headers=FHIR)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Patient.id"]


def test_if_match_mismatch_is_412_and_match_succeeds(client):
    created = create(client).json()
    url = f"/Patient/{created['id']}"
    stale = client.put(
        url, json={**created, "gender": "female"}, headers={**FHIR, "If-Match": 'W/"7"'}
    )
    assert stale.status_code == 412
    fresh = client.put(
        url, json={**created, "gender": "female"}, headers={**FHIR, "If-Match": 'W/"1"'}
    )
    assert fresh.status_code == 200
    assert client.get(url).json()["gender"] == "female"


def test_delete_leaves_a_tombstone_read_gives_410_and_history_keeps_it(client):
    created = create(client).json()
    url = f"/Patient/{created['id']}"
    assert client.delete(url).status_code in (200, 204)
    gone = client.get(url)
    assert gone.status_code == 410
    assert gone.json()["issue"][0]["code"] == "deleted"
    history = client.get(f"{url}/_history").json()
    assert history["total"] == 2
    assert history["entry"][0]["request"]["method"] == "DELETE"
    assert "resource" not in history["entry"][0]
    assert client.get(f"{url}/_history/1").status_code == 200
    assert client.get(f"{url}/_history/2").status_code == 410


def test_recreate_after_delete_continues_the_version_count(client):
    client.put("/Patient/p9", json={**PATIENT, "id": "p9"}, headers=FHIR)
    client.delete("/Patient/p9")
    again = client.put("/Patient/p9", json={**PATIENT, "id": "p9"}, headers=FHIR)
    assert again.status_code == 201
    assert again.json()["meta"]["versionId"] == "3"


def test_prefer_minimal_and_operation_outcome(client):
    minimal = create(client, Prefer="return=minimal")
    assert minimal.status_code == 201 and minimal.content == b""
    assert minimal.headers["location"]
    oo = create(client, Prefer="return=OperationOutcome")
    assert oo.status_code == 201
    assert oo.json()["resourceType"] == "OperationOutcome"


def test_invalid_json_is_400(client):
    response = client.post("/Patient", content=b'{"resourceType": "Patient",', headers=FHIR)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_invalid_resource_names_the_element(client):
    response = create(client, {"resourceType": "Patient", "birthDate": "not-a-date"})
    assert response.status_code == 400
    expressions = [e for i in response.json()["issue"] for e in i.get("expression", [])]
    assert any("birthDate" in e for e in expressions)


def test_wrong_resource_type_for_the_url_is_400(client):
    response = client.post("/Observation", json=PATIENT, headers=FHIR)
    assert response.status_code == 400


def test_xml_content_type_is_415(client):
    response = client.post(
        "/Patient", content=b"<Patient/>", headers={"Content-Type": "application/fhir+xml"}
    )
    assert response.status_code == 415
    assert response.json()["resourceType"] == "OperationOutcome"


def test_too_large_body_is_413(client, app):
    app.state.settings.max_body_bytes = 1000
    response = client.post("/Patient", content=b" " * 2000, headers=FHIR)
    assert response.status_code == 413


def test_method_not_allowed_is_405_operation_outcome(client):
    response = client.post("/metadata", json={})
    assert response.status_code == 405
    assert response.json()["resourceType"] == "OperationOutcome"


def test_format_json_is_accepted(client):
    created = create(client).json()
    response = client.get(f"/Patient/{created['id']}", params={"_format": "json"})
    assert response.status_code == 200
