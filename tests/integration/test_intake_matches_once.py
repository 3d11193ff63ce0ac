"""An HL7 update's conditional criteria are searched once per message: the replay guard's
search stands for the Bundle's ifNoneExist, which then finds the same (stored) resource."""

from __future__ import annotations

from datetime import UTC, datetime

from intake_helpers import ack_fields, adt

from fhir_gateway.context import SYSTEM
from fhir_gateway.services import source_guard
from fhir_gateway.services.bundles import process_bundle
from fhir_gateway.store import repository

PATIENT = {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "M1"}]}


def _bundle(full_url: str = "urn:uuid:11111111-1111-1111-1111-111111111111") -> dict:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": full_url,
                "resource": PATIENT,
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": "identifier=urn:mrn|M1",
                },
            },
            {
                "resource": {"resourceType": "Parameters", "parameter": []},
                "request": {"method": "PATCH", "url": "Patient?identifier=urn:mrn|M1"},
            },
        ],
    }


def test_the_guard_hands_on_what_it_found_and_the_bundle_takes_it(session_factory, settings):
    with session_factory() as session:
        repository.create_resource(session, {**PATIENT, "id": "p1"}, res_id="p1")
    with session_factory() as session:
        matches: dict = {}
        source_guard.drop_stale(session, _bundle(), datetime(2024, 1, 1, tzinfo=UTC), matches)
        assert matches == {("Patient", "identifier=urn%3Amrn%7CM1"): ["p1"]}
        response = process_bundle(
            session, _bundle(), SYSTEM, base_url="", settings=settings, known_matches=matches
        )
        assert response["entry"][0]["response"]["location"].startswith("Patient/p1/")


def test_an_update_message_changes_the_stored_patient_and_creates_no_other(intake, client):  # type: ignore[no-untyped-def]
    assert ack_fields(intake.receive_hl7(adt("A01", "C1", family="FIRST")).body)["code"] == "AA"
    assert ack_fields(intake.receive_hl7(adt("A08", "C2", family="SECOND")).body)["code"] == "AA"
    patients = client.get("/Patient").json().get("entry", [])
    assert [e["resource"]["name"][0]["family"] for e in patients] == ["SECOND"]
