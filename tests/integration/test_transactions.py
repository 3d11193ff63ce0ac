"""batch and transaction Bundles: atomicity, urn:uuid resolution, conditional entries, order."""

from __future__ import annotations

FHIR = {"Content-Type": "application/fhir+json"}


def entry(method: str, url: str, resource=None, full_url=None, **request):  # type: ignore[no-untyped-def]
    out: dict = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        out["resource"] = resource
    if full_url:
        out["fullUrl"] = full_url
    return out


def bundle(kind: str, *entries):  # type: ignore[no-untyped-def]
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


PAT_URN = "urn:uuid:6f1c0e0e-0000-4000-8000-000000000001"
ENC_URN = "urn:uuid:6f1c0e0e-0000-4000-8000-000000000002"


def discharge_bundle(mrn: str = "T1"):  # type: ignore[no-untyped-def]
    return bundle(
        "transaction",
        entry(
            "POST",
            "Patient",
            {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": mrn}]},
            PAT_URN,
            ifNoneExist=f"identifier=urn:mrn|{mrn}",
        ),
        entry(
            "POST",
            "Encounter",
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "IMP",
                },
                "subject": {"reference": PAT_URN},
                "identifier": [{"system": "urn:visit", "value": f"V-{mrn}"}],
            },
            ENC_URN,
            ifNoneExist=f"identifier=urn:visit|V-{mrn}",
        ),
        entry(
            "POST",
            "Condition",
            {
                "resourceType": "Condition",
                "subject": {"reference": PAT_URN},
                "encounter": {"reference": ENC_URN},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "F32.1"}]},
            },
            "urn:uuid:6f1c0e0e-0000-4000-8000-000000000003",
            ifNoneExist=f"encounter={ENC_URN}&code=http://hl7.org/fhir/sid/icd-10|F32.1",
        ),
    )


def test_transaction_resolves_urn_uuid_references(client):
    response = client.post("/", json=discharge_bundle(), headers=FHIR)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses == ["201 Created"] * 3
    patient_loc, encounter_loc, _ = (e["response"]["location"] for e in body["entry"])
    patient_ref = "/".join(patient_loc.split("/")[:2])
    encounter = client.get("/" + "/".join(encounter_loc.split("/")[:2])).json()
    assert encounter["subject"]["reference"] == patient_ref


def test_resent_transaction_creates_nothing_new(client):
    client.post("/", json=discharge_bundle("T2"), headers=FHIR)
    again = client.post("/", json=discharge_bundle("T2"), headers=FHIR).json()
    assert [e["response"]["status"] for e in again["entry"]] == ["200 OK"] * 3
    assert client.get("/Condition").json()["total"] == 1
    assert client.get("/Encounter").json()["total"] == 1


def test_transaction_failing_half_way_leaves_nothing(client):
    failing = discharge_bundle("T3")
    failing["entry"].append(
        entry("PUT", "Patient/x", {"resourceType": "Patient", "id": "x", "birthDate": "bad"})
    )
    response = client.post("/", json=failing, headers=FHIR)
    assert response.status_code == 400
    assert "Bundle.entry[3]" in response.json()["issue"][0]["diagnostics"]
    assert client.get("/Patient").json()["total"] == 0
    assert client.get("/Encounter").json()["total"] == 0


def test_transaction_runs_delete_before_post_before_put_before_get(client):
    client.put("/Patient/old", json={"resourceType": "Patient", "id": "old"}, headers=FHIR)
    tx = bundle(
        "transaction",
        entry("GET", "Patient?_id=old"),
        entry("PUT", "Patient/p1", {"resourceType": "Patient", "id": "p1", "gender": "other"}),
        entry(
            "POST",
            "Patient",
            {"resourceType": "Patient", "gender": "female"},
            "urn:uuid:aa000000-0000-4000-8000-000000000000",
        ),
        entry("DELETE", "Patient/old"),
    )
    body = client.post("/", json=tx, headers=FHIR).json()
    get_result = body["entry"][0]["resource"]
    assert get_result["resourceType"] == "Bundle"
    assert (
        get_result.get("total", len(get_result.get("entry", []))) == 0
    )  # deleted before the GET ran
    assert body["entry"][1]["response"]["status"] == "201 Created"
    assert body["entry"][3]["response"]["status"].startswith("20")


def test_transaction_with_unknown_urn_reference_is_400(client):
    tx = bundle(
        "transaction",
        entry(
            "POST",
            "Encounter",
            {
                "resourceType": "Encounter",
                "status": "planned",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-0000000000ff"},
            },
        ),
    )
    response = client.post("/", json=tx, headers=FHIR)
    assert response.status_code == 400
    assert client.get("/Encounter").json()["total"] == 0


def test_transaction_conditional_put_and_patch(client):
    tx = bundle(
        "transaction",
        entry(
            "PUT",
            "Patient?identifier=urn:mrn|CP",
            {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "CP"}]},
        ),
    )
    first = client.post("/", json=tx, headers=FHIR).json()
    assert first["entry"][0]["response"]["status"] == "201 Created"
    patch = bundle(
        "transaction",
        entry(
            "PATCH",
            "Patient?identifier=urn:mrn|CP",
            {
                "resourceType": "Parameters",
                "parameter": [
                    {
                        "name": "operation",
                        "part": [
                            {"name": "type", "valueCode": "add"},
                            {"name": "path", "valueString": "Patient"},
                            {"name": "name", "valueString": "gender"},
                            {"name": "value", "valueCode": "female"},
                        ],
                    }
                ],
            },
        ),
    )
    second = client.post("/", json=patch, headers=FHIR)
    assert second.status_code == 200, second.text
    found = client.get("/Patient", params={"identifier": "urn:mrn|CP"}).json()
    assert found["entry"][0]["resource"]["gender"] == "female"


def test_batch_reports_each_entry_and_keeps_the_good_ones(client):
    b = bundle(
        "batch",
        entry("POST", "Patient", {"resourceType": "Patient", "gender": "male"}),
        entry("POST", "Patient", {"resourceType": "Patient", "birthDate": "someday"}),
        entry("GET", "Patient/missing"),
    )
    body = client.post("/", json=b, headers=FHIR).json()
    assert body["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses[0] == "201 Created"
    assert statuses[1] == "400"
    assert statuses[2] == "404"
    assert body["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert client.get("/Patient").json()["total"] == 1


def test_posting_a_non_bundle_to_the_base_is_400(client):
    response = client.post("/", json={"resourceType": "Patient"}, headers=FHIR)
    assert response.status_code == 400


def test_two_entries_changing_the_same_resource_is_400(client):
    tx = bundle(
        "transaction",
        entry("PUT", "Patient/same", {"resourceType": "Patient", "id": "same"}),
        entry("DELETE", "Patient/same"),
    )
    assert client.post("/", json=tx, headers=FHIR).status_code == 400


def test_references_to_a_conditional_put_that_creates_point_at_the_created_resource(client):
    org = "urn:uuid:0f000000-0000-4000-8000-000000000001"
    tx = bundle(
        "transaction",
        entry(
            "PUT",
            "Organization?identifier=urn:org|H1",
            {"resourceType": "Organization", "identifier": [{"system": "urn:org", "value": "H1"}]},
            org,
        ),
        entry(
            "POST",
            "Patient",
            {"resourceType": "Patient", "managingOrganization": {"reference": org}},
            "urn:uuid:0f000000-0000-4000-8000-000000000002",
        ),
    )
    body = client.post("/", json=tx, headers=FHIR).json()
    org_location = body["entry"][0]["response"]["location"]
    patient = client.get(
        "/" + "/".join(body["entry"][1]["response"]["location"].split("/")[:2])
    ).json()
    assert patient["managingOrganization"]["reference"] == "/".join(org_location.split("/")[:2])
    assert client.get("/" + patient["managingOrganization"]["reference"]).status_code == 200
