"""Batch and transaction Bundles have bounds (issue #15, item 7; DESIGN decision 15): entries per
Bundle and the size of the response, each a 413 too-costly naming the limit, nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhir_gateway.app import create_app
from fhir_gateway.settings import Settings
from fhir_gateway.store.db import Database

FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def limited(database_url: str, database: Database) -> Iterator[TestClient]:
    settings = Settings(
        database_url=database_url,
        auth_enabled=False,
        audit_enabled=False,
        batch_max_entries=5,
        batch_max_response_bytes=4000,
    )
    with TestClient(create_app(settings, database=database)) as client:
        yield client


def _bundle(kind: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def _create(family: str) -> dict[str, Any]:
    return {
        "resource": {"resourceType": "Patient", "name": [{"family": family}]},
        "request": {"method": "POST", "url": "Patient"},
    }


def _refused(response, limit: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 413, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == "too-costly"
    assert limit in issue["diagnostics"]


def _patients(client: TestClient) -> int:
    return int(client.get("/Patient?_summary=count").json()["total"])


@pytest.mark.parametrize("kind", ["batch", "transaction"])
def test_a_bundle_over_the_entry_limit_is_refused_whole(limited, kind):
    response = limited.post(
        "/", json=_bundle(kind, [_create(f"P{i}") for i in range(6)]), headers=FHIR
    )
    _refused(response, "batch_max_entries")
    assert _patients(limited) == 0
    response = limited.post(
        "/", json=_bundle(kind, [_create(f"P{i}") for i in range(5)]), headers=FHIR
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("kind", ["batch", "transaction"])
def test_a_response_over_the_size_limit_is_refused_and_nothing_is_written(limited, kind):
    assert (
        limited.post(
            "/", json=_bundle("batch", [_create("Stored") for _ in range(5)]), headers=FHIR
        ).status_code
        == 200
    )
    searches = [{"request": {"method": "GET", "url": "Patient?_count=1000"}} for _ in range(4)]
    # each search answers ~1 KB of Patients: four of them pass the 4,000-byte limit
    response = limited.post("/", json=_bundle(kind, [_create("New"), *searches]), headers=FHIR)
    _refused(response, "batch_max_response_bytes")
    assert _patients(limited) == 5  # the create in the refused Bundle was rolled back
    response = limited.post("/", json=_bundle(kind, [_create("New"), searches[0]]), headers=FHIR)
    assert response.status_code == 200, response.text
