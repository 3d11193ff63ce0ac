"""Integers in paths, query parameters and ETags, however large or odd, answer 4xx with an
OperationOutcome, never a 500 (issue #15, item 9): Python refuses to convert strings of more than
4,300 digits, ``isdigit`` accepts digits ``int`` refuses, and the database columns overflow."""

from __future__ import annotations

import pytest

FHIR = {"Content-Type": "application/fhir+json"}
HUGE = "99999999999999999999999"  # past PostgreSQL integer/bigint and SQLite INTEGER
ENORMOUS = "9" * 5000  # past Python's int() limit for strings


@pytest.fixture
def patient_id(client) -> str:  # type: ignore[no-untyped-def]
    response = client.post("/Patient", json={"resourceType": "Patient"}, headers=FHIR)
    assert response.status_code == 201
    return str(response.json()["id"])


def _outcome(response, status: int) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("version", [HUGE, ENORMOUS, "²", "0"])
def test_a_version_that_cannot_exist_is_not_found(client, patient_id, version):
    _outcome(client.get(f"/Patient/{patient_id}/_history/{version}"), 404)


@pytest.mark.parametrize("path", ["/Patient", "/Patient/_history", "/_history", "/"])
def test_an_enormous_count_is_capped_at_the_largest_page(client, patient_id, path):
    for count in (HUGE, ENORMOUS):
        response = client.get(f"{path}?_count={count}")
        assert response.status_code == 200, response.text
        assert response.json()["resourceType"] == "Bundle"
    _outcome(client.get(f"{path}?_count=²"), 400)


def test_an_enormous_history_offset_is_capped(client, patient_id):
    response = client.get(f"/_history?_offset={ENORMOUS}")
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "history"


@pytest.mark.parametrize("etag", [f'W/"{HUGE}"', f'W/"{ENORMOUS}"'])
def test_an_if_match_past_any_version_does_not_match(client, patient_id, etag):
    body = {"resourceType": "Patient", "id": patient_id}
    _outcome(
        client.put(f"/Patient/{patient_id}", json=body, headers={**FHIR, "If-Match": etag}), 412
    )


def test_an_if_match_of_odd_digits_is_a_bad_request(client, patient_id):
    body = {"resourceType": "Patient", "id": patient_id}
    headers = {**FHIR, "If-Match": 'W/"²"'.encode("latin-1")}  # type: ignore[dict-item]
    _outcome(client.put(f"/Patient/{patient_id}", json=body, headers=headers), 400)


def test_the_same_numbers_inside_a_batch_answer_per_entry(client, patient_id):
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient/{patient_id}/_history/{ENORMOUS}"}},
            {"request": {"method": "GET", "url": f"Patient?_count={ENORMOUS}"}},
            {
                "request": {
                    "method": "PUT",
                    "url": f"Patient/{patient_id}",
                    "ifMatch": f'W/"{HUGE}"',
                },
                "resource": {"resourceType": "Patient", "id": patient_id},
            },
        ],
    }
    response = client.post("/", json=bundle, headers=FHIR)
    assert response.status_code == 200, response.text
    statuses = [e["response"]["status"].split()[0] for e in response.json()["entry"]]
    assert statuses == ["404", "200", "412"]


@pytest.mark.parametrize(
    "query", [f"_offset={HUGE}", f"_offset={ENORMOUS}", "_offset=-1", "_count=-1"]
)
def test_inbox_paging_numbers_out_of_range_are_a_bad_request(client, query):
    _outcome(client.get(f"/inbox?{query}"), 400)
