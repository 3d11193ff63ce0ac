"""FHIR channels: Da Vinci notifications through $process-message, and an inpatient Encounter
finished through the REST API or a transaction Bundle — all discharge events for the hook."""

from __future__ import annotations

import copy
from typing import Any

import orjson
from intake_helpers import DAVINCI

FHIR = {"content-type": "application/fhir+json"}


def _bundle(name: str) -> dict[str, Any]:
    return orjson.loads((DAVINCI / name).read_bytes())  # type: ignore[no-any-return]


def test_discharge_notification_is_applied_once_and_answered_as_messaging_says(
    client, recorded_discharges
) -> None:  # type: ignore[no-untyped-def]
    body = _bundle("discharge-notification-message-bundle-01.json")
    first = client.post("/$process-message", json=body, headers=FHIR)
    assert first.status_code == 200
    answer = first.json()
    assert answer["type"] == "message"
    assert answer["entry"][0]["resource"]["response"] == {
        "identifier": "df0bb058-e0bb-11ea-a11a-864d2e68a322",
        "code": "ok",
    }
    [encounter] = [
        e["resource"]
        for e in client.get(
            "/Encounter",
            params={"identifier": "http://example.org|Elden718Halvorson12420181021T2122150700"},
        ).json()["entry"]
    ]
    assert encounter["status"] == "finished" and encounter["class"]["code"] == "IMP"
    patient = client.get(f"/{encounter['subject']['reference']}").json()
    assert patient["name"][0]["family"] == "Halvorson124"
    assert [(d.source, d.event) for d in recorded_discharges] == [
        ("fhir-message", "notification-discharge")
    ]

    versions = client.get("/_history", params={"_count": 1}).json()["total"]
    again = client.post("/$process-message", json=body, headers=FHIR)
    assert (again.status_code, again.content) == (200, first.content)  # the original answer
    assert client.get("/_history", params={"_count": 1}).json()["total"] == versions
    assert len(recorded_discharges) == 1
    assert [m["status"] for m in client.get("/inbox").json()["messages"]] == [
        "duplicate",
        "processed",
    ]


def test_admit_then_discharge_update_the_same_encounter(client, recorded_discharges) -> None:  # type: ignore[no-untyped-def]
    admit = client.post(
        "/$process-message", json=_bundle("admit-notification-message-bundle-01.json"), headers=FHIR
    )
    assert admit.status_code == 200
    assert recorded_discharges == []  # an emergency admission is no discharge
    client.post(
        "/$process-message",
        json=_bundle("discharge-notification-message-bundle-01.json"),
        headers=FHIR,
    )
    found = client.get(
        "/Encounter",
        params={"identifier": "http://example.org|Elden718Halvorson12420181021T2122150700"},
    ).json()
    assert found["total"] == 1 and found["entry"][0]["resource"]["status"] == "finished"
    assert client.get("/Patient").json()["total"] == 1


def test_unacceptable_notifications_are_refused_with_an_operation_outcome(client) -> None:  # type: ignore[no-untyped-def]
    lab = _bundle("admit-notification-message-bundle-01.json")
    lab["entry"][0]["resource"]["eventCoding"]["code"] = "notification-lab"
    refused = client.post("/$process-message", json=lab, headers=FHIR)
    assert refused.status_code == 400
    assert refused.json()["issue"][0]["code"] == "not-supported"
    not_json = client.post("/$process-message", content=b"{nope", headers=FHIR)
    assert not_json.status_code == 400
    assert len(client.get("/inbox", params={"status": "failed"}).json()["messages"]) == 2  # kept


def test_unknown_fhir_sender_is_refused_when_the_allow_list_is_on(app, client) -> None:  # type: ignore[no-untyped-def]
    from fhir_gateway.services.ingest import Intake

    settings = app.state.settings.model_copy(
        update={"sender_allowlist": {"https://example.org/Endpoints/OTHER": "Other"}}
    )
    app.state.intake = Intake(app.state.database, settings)
    answer = client.post(
        "/$process-message", json=_bundle("admit-notification-message-bundle-01.json"), headers=FHIR
    )
    assert answer.status_code == 400 and "not registered" in answer.text


def _encounter(status: str, code: str = "IMP", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": "stay-1",
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": code},
        "subject": {"reference": "Patient/p1"},
        **extra,
    }


def test_rest_update_finishing_an_inpatient_stay_is_a_discharge(
    client, recorded_discharges
) -> None:  # type: ignore[no-untyped-def]
    client.put("/Patient/p1", json={"resourceType": "Patient", "id": "p1"}, headers=FHIR)
    assert (
        client.put("/Encounter/stay-1", json=_encounter("in-progress"), headers=FHIR).status_code
        == 201
    )
    assert recorded_discharges == []
    assert (
        client.put("/Encounter/stay-1", json=_encounter("finished"), headers=FHIR).status_code
        == 200
    )
    assert [(d.encounter, d.patient, d.source) for d in recorded_discharges] == [
        ("Encounter/stay-1", "Patient/p1", "rest")
    ]
    # editing the finished stay is no second discharge
    client.put(
        "/Encounter/stay-1",
        json=_encounter("finished", serviceType={"text": "psychiatry"}),
        headers=FHIR,
    )
    assert len(recorded_discharges) == 1


def test_finishing_an_outpatient_visit_is_no_discharge(client, recorded_discharges) -> None:  # type: ignore[no-untyped-def]
    client.put("/Encounter/stay-1", json=_encounter("in-progress", "AMB"), headers=FHIR)
    client.put("/Encounter/stay-1", json=_encounter("finished", "AMB"), headers=FHIR)
    assert recorded_discharges == []


def test_transaction_finishing_an_inpatient_stay_is_a_discharge(
    client, recorded_discharges
) -> None:  # type: ignore[no-untyped-def]
    client.put("/Encounter/stay-1", json=_encounter("in-progress"), headers=FHIR)
    tx = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": _encounter("finished"),
                "request": {"method": "PUT", "url": "Encounter/stay-1"},
            },
            {
                "resource": {"resourceType": "Patient", "id": "p1"},
                "request": {"method": "PUT", "url": "Patient/p1"},
            },
        ],
    }
    assert client.post("/", json=tx, headers=FHIR).status_code == 200
    assert [d.encounter for d in recorded_discharges] == ["Encounter/stay-1"]
    failing = copy.deepcopy(tx)
    failing["entry"][0]["resource"]["status"] = "in-progress"
    failing["entry"].append(
        {"resource": {"resourceType": "Patient"}, "request": {"method": "PUT", "url": "Patient/p1"}}
    )
    assert client.post("/", json=failing, headers=FHIR).status_code >= 400  # rolled back: no event
    assert len(recorded_discharges) == 1
