"""A request body of more JSON values than ``max_json_values`` is refused with 413 before any
validation or indexing (issue #15, item 11: 80,000 names in one Patient took 24 s to store)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fhir_gateway.app import create_app
from fhir_gateway.settings import Settings
from fhir_gateway.store.db import Database

FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def limited(database_url: str, database: Database) -> Iterator[TestClient]:
    settings = Settings(
        database_url=database_url, auth_enabled=False, audit_enabled=False, max_json_values=1000
    )
    with TestClient(create_app(settings, database=database)) as client:
        yield client


def _patient(names: int) -> dict[str, object]:
    return {"resourceType": "Patient", "name": [{"family": f"F{i}"} for i in range(names)]}


def _refused(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 413, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == "too-costly"
    assert "max_json_values" in issue["diagnostics"]


def test_a_resource_with_a_huge_array_is_refused(limited):
    _refused(limited.post("/Patient", json=_patient(600), headers=FHIR))
    _refused(limited.put("/Patient/p1", json={**_patient(600), "id": "p1"}, headers=FHIR))
    assert limited.get("/Patient?_summary=count").json()["total"] == 0
    assert limited.post("/Patient", json=_patient(300), headers=FHIR).status_code == 201


def test_a_transaction_counts_all_its_resources(limited):
    entry = {"resource": _patient(100), "request": {"method": "POST", "url": "Patient"}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry] * 6}
    _refused(limited.post("/", json=bundle, headers=FHIR))
    assert limited.get("/Patient?_summary=count").json()["total"] == 0


def test_a_json_patch_that_doubles_an_array_again_and_again_is_refused(limited):
    created = limited.post("/Patient", json=_patient(1), headers=FHIR).json()
    doublings = [{"op": "copy", "from": "/name", "path": "/name/-"}] * 40  # 2**40 names
    response = limited.patch(
        f"/Patient/{created['id']}",
        json=doublings,
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 413, response.text
    assert response.json()["issue"][0]["code"] == "too-costly"
    assert len(limited.get(f"/Patient/{created['id']}").json()["name"]) == 1
