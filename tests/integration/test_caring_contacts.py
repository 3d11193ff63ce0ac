"""Caring contacts end to end, with the gateway's clock controlled: a year of messages after a
discharge in Bengaluru delivered by real SMTP to a local server (aiosmtpd) in Hindi, with
Tele-MANAS and no diagnosis; the series stopping when the consent is withdrawn and on a STOP
reply (a queued message is then not sent); the SMS webhook signed and retried; a reply on the
case manager's worklist; an SMTP failure retried by the outbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from contacts_helpers import body_of
from pydantic import SecretStr

from fhir_gateway import clock, contacts
from fhir_gateway.app import create_app
from fhir_gateway.contacts import caring_consent
from fhir_gateway.context import SYSTEM
from fhir_gateway.notifications import SIGNATURE_HEADER, verify
from fhir_gateway.services import resources as svc
from fhir_gateway.services.lookup import search
from fhir_gateway.settings import Settings
from fhir_gateway.store import outbox
from fhir_gateway.web._display import Display
from fhir_gateway.web._worklist import Filters, worklist
from fhir_gateway.workers.delivery import DeliveryWorker

DISCHARGED = datetime(2026, 1, 12, 9, 30, tzinfo=UTC)  # 15:00 in Bengaluru
ZONE = "Asia/Kolkata"
WEBHOOK = "https://sms.example.net/v1/messages"
SECRET = "webhook-secret"
DIAGNOSIS = ("F32.2", "Severe depressive episode", "depress")


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def now() -> Iterator[Clock]:
    controlled = Clock(DISCHARGED - timedelta(hours=1))
    clock.set_clock(controlled)
    yield controlled
    clock.reset_clock()


@pytest.fixture
def gateway(settings: Settings, database, smtp_server):  # type: ignore[no-untyped-def]
    smtp_server.mailbox.clear()
    configured = settings.model_copy(
        update={
            "default_country": "IN",
            "default_sender_zone": ZONE,
            "contacts_smtp_host": smtp_server.host,
            "contacts_smtp_port": smtp_server.port,
            "contacts_smtp_from": "care-team@nimhans.example.in",
            "contacts_smtp_starttls": False,
            "contacts_smtp_timeout": 5.0,
            "contacts_webhook_url": WEBHOOK,
            "contacts_webhook_secret": SecretStr(SECRET),
            "outbox_backoff_base": 60.0,
            "outbox_concurrency": 1,
            "partner_poll_interval": 0,
            "monitor_interval": 0,
        }
    )
    create_app(configured, database=database)  # installs the write rules with these settings
    return configured, database


def _write(database, fn, *args):  # type: ignore[no-untyped-def]
    return database.write(fn, *args)


def _patient(pid: str, language: str, telecom: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": "Rao", "given": ["Asha"]}],
        "telecom": telecom,
        "communication": [
            {
                "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": language}]},
                "preferred": True,
            }
        ],
    }


def _admit_and_discharge(database, pid: str, *, consent: bool = True) -> None:  # type: ignore[no-untyped-def]
    def seed(session) -> None:  # type: ignore[no-untyped-def]
        if consent:
            svc.create(
                session, "Consent", caring_consent(f"Patient/{pid}", signed="2026-01-12"), SYSTEM
            )
        svc.update(
            session,
            "Condition",
            f"{pid}-dx",
            {
                "resourceType": "Condition",
                "id": f"{pid}-dx",
                "subject": {"reference": f"Patient/{pid}"},
                "code": {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/sid/icd-10",
                            "code": DIAGNOSIS[0],
                            "display": DIAGNOSIS[1],
                        }
                    ]
                },
            },
            SYSTEM,
        )

    database.write(seed)

    def discharge(session) -> None:  # type: ignore[no-untyped-def]
        svc.update(
            session,
            "Encounter",
            f"{pid}-stay",
            {
                "resourceType": "Encounter",
                "id": f"{pid}-stay",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "IMP",
                },
                "subject": {"reference": f"Patient/{pid}"},
                "period": {"start": "2026-01-02T05:00:00Z", "end": DISCHARGED.isoformat()},
                "diagnosis": [{"condition": {"reference": f"Condition/{pid}-dx"}, "rank": 1}],
            },
            SYSTEM,
        )

    database.write(discharge)  # the commit announces the discharge: the series is made


def _requests(database, pid: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    found = database.read(search, "CommunicationRequest", [("subject", f"Patient/{pid}")])
    return sorted(found, key=lambda r: r["occurrenceDateTime"])


def _sent(database, pid: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    found = database.read(
        search, "Communication", [("subject", f"Patient/{pid}"), ("status", "completed")]
    )
    return sorted((c for c in found if c.get("basedOn")), key=lambda c: c["sent"])


def _run(worker: DeliveryWorker, now: Clock, until: datetime, step: timedelta) -> None:
    """Advance the clock to ``until`` in steps, running the due-sender and the deliveries."""
    while now.at < until:
        now.at = min(now.at + step, until)
        worker.send_caring_contacts_if_due()
        worker.drain(max_rounds=20)


def test_a_year_of_caring_contacts_by_email_in_hindi_with_tele_manas(
    gateway, smtp_server, now
) -> None:  # type: ignore[no-untyped-def]
    settings, database = gateway
    _write(
        database,
        svc.update,
        "Patient",
        "asha",
        _patient("asha", "hi", [{"system": "email", "value": "asha.rao@example.in"}]),
        SYSTEM,
    )
    _admit_and_discharge(database, "asha")
    requests = _requests(database, "asha")
    assert len(requests) == 15
    assert {r["status"] for r in requests} == {"active"} and {r["language"] for r in requests} == {
        "hi"
    }
    local = [
        datetime.fromisoformat(r["occurrenceDateTime"].replace("Z", "+00:00"))
        + timedelta(hours=5, minutes=30)
        for r in requests
    ]
    assert [d.date().isoformat() for d in local[:5]] == [
        "2026-01-19",
        "2026-01-26",
        "2026-02-02",
        "2026-02-09",
        "2026-03-12",
    ]
    assert local[-1].date().isoformat() == "2027-01-12" and {(d.hour, d.minute) for d in local} == {
        (10, 0)
    }

    worker = DeliveryWorker(database, settings)
    try:
        _run(worker, now, DISCHARGED + timedelta(days=30), timedelta(days=2))  # the weekly ones
        _run(worker, now, DISCHARGED + timedelta(days=400), timedelta(days=6))  # the monthly ones
    finally:
        worker.close()

    mails = smtp_server.mailbox.received
    assert len(mails) == 15
    for mail, request in zip(mails, requests, strict=True):
        body = body_of(mail)
        assert mail["To"] == "asha.rao@example.in" and mail["Content-Language"] == "hi"
        assert mail["Subject"] == "आपके बारे में सोच रहे हैं"
        assert "14416" in body and "टेली-मानस" in body  # Tele-MANAS, India's crisis line
        assert "चौबीसों घंटे नहीं" in body  # replies are not read around the clock
        assert not any(word.lower() in body.lower() for word in DIAGNOSIS)
        assert mail["X-Reference"] == f"CommunicationRequest/{request['id']}"
    sent = _sent(database, "asha")
    assert [c["basedOn"][0]["reference"] for c in sent] == [
        f"CommunicationRequest/{r['id']}" for r in requests
    ]
    for communication, request in zip(sent, requests, strict=True):
        due = datetime.fromisoformat(request["occurrenceDateTime"].replace("Z", "+00:00"))
        at = datetime.fromisoformat(communication["sent"].replace("Z", "+00:00"))
        assert due <= at < due + timedelta(days=6)  # sent at the first run after it fell due
    assert {r["status"] for r in _requests(database, "asha")} == {"completed"}
    assert database.read(outbox.counts) == {"delivered": 15}


def test_no_consent_no_messages_and_a_consent_given_later_starts_what_is_still_ahead(
    gateway, now
) -> None:  # type: ignore[no-untyped-def]
    _, database = gateway
    _write(
        database,
        svc.update,
        "Patient",
        "ravi",
        _patient("ravi", "kn", [{"system": "email", "value": "ravi@example.in"}]),
        SYSTEM,
    )
    _admit_and_discharge(database, "ravi", consent=False)
    assert _requests(database, "ravi") == []  # the default: no consent, no messages
    now.at = DISCHARGED + timedelta(days=20)  # the patient agrees at the first follow-up visit
    _write(
        database, svc.create, "Consent", caring_consent("Patient/ravi", signed="2026-02-01"), SYSTEM
    )
    requests = _requests(database, "ravi")
    assert len(requests) == 13  # the two weekly messages already past are not sent late
    assert {r["language"] for r in requests} == {"kn"}
    assert all(r["occurrenceDateTime"] > clock.to_instant(now.at) for r in requests)


def test_withdrawing_consent_stops_the_series_and_a_queued_message_is_not_sent(
    gateway, smtp_server, now
) -> None:  # type: ignore[no-untyped-def]
    settings, database = gateway
    _write(
        database,
        svc.update,
        "Patient",
        "asha",
        _patient("asha", "kn", [{"system": "email", "value": "asha.rao@example.in"}]),
        SYSTEM,
    )
    _admit_and_discharge(database, "asha")
    worker = DeliveryWorker(database, settings)
    try:
        _run(worker, now, DISCHARGED + timedelta(days=15), timedelta(days=2))
        assert len(smtp_server.mailbox.received) == 2
        now.at = DISCHARGED + timedelta(days=22)
        assert worker.send_caring_contacts_if_due() == 1  # the third is queued …
        consent = database.read(search, "Consent", [("patient", "Patient/asha")])[0]
        _write(
            database,
            svc.update,
            "Consent",
            consent["id"],
            {**consent, "status": "inactive"},
            SYSTEM,
        )
        results = worker.drain()  # … and withdrawn, not sent
        assert [r.outcome for r in results] == ["withdrawn"]
        _run(worker, now, DISCHARGED + timedelta(days=400), timedelta(days=20))
    finally:
        worker.close()
    assert len(smtp_server.mailbox.received) == 2
    statuses = [r["status"] for r in _requests(database, "asha")]
    assert statuses == ["completed"] * 2 + ["revoked"] * 13
    assert len(_sent(database, "asha")) == 2


def test_a_stop_reply_ends_the_series_and_a_reply_is_on_the_worklist(
    gateway, smtp_server, client, now
) -> None:  # type: ignore[no-untyped-def]
    settings, database = gateway
    _write(
        database,
        svc.update,
        "Patient",
        "asha",
        _patient("asha", "en", [{"system": "email", "value": "asha.rao@example.in"}]),
        SYSTEM,
    )
    _admit_and_discharge(database, "asha")
    worker = DeliveryWorker(database, settings)
    try:
        _run(worker, now, DISCHARGED + timedelta(days=9), timedelta(days=2))
        [first] = _sent(database, "asha")
        reply = {
            "resourceType": "Communication",
            "status": "completed",
            "inResponseTo": [{"reference": f"Communication/{first['id']}"}],
            "subject": {"reference": "Patient/asha"},
            "sender": {"reference": "Patient/asha"},
            "payload": [
                {
                    "contentString": "Thank you. Some days are hard but I am going to my appointments."
                }
            ],
        }
        assert client.post("/Communication", json=reply).status_code == 201
        flags = client.get(
            "/Flag",
            params={
                "_tag": "http://fhir-gateway.org/fhir/CodeSystem/monitor-flags|caring-contact-reply"
            },
        ).json()
        [flag] = [e["resource"] for e in flags.get("entry", [])]
        assert flag["status"] == "active" and flag["subject"]["reference"] == "Patient/asha"
        assert "Some days are hard" in flag["code"]["text"]
        shown = Display.for_settings(settings)
        rows = database.read(worklist, SYSTEM, Filters(), shown, settings).rows
        [row] = [r for r in rows if r.kind == "caring-contact-reply"]  # on the case manager's list
        assert row.patient == "Patient/asha" and "Some days are hard" in row.text
        stop = {**reply, "payload": [{"contentString": "STOP"}]}
        assert client.post("/Communication", json=stop).status_code == 201
        _run(worker, now, DISCHARGED + timedelta(days=400), timedelta(days=20))
    finally:
        worker.close()
    assert len(smtp_server.mailbox.received) == 1
    assert [r["status"] for r in _requests(database, "asha")] == ["completed"] + ["revoked"] * 14


def test_the_stop_operation_revokes_the_remaining_contacts(gateway, client, now) -> None:  # type: ignore[no-untyped-def]
    _, database = gateway
    _write(
        database,
        svc.update,
        "Patient",
        "asha",
        _patient("asha", "en", [{"system": "email", "value": "asha.rao@example.in"}]),
        SYSTEM,
    )
    _admit_and_discharge(database, "asha")
    answer = client.post("/Patient/asha/$stop-caring-contacts")
    assert answer.status_code == 200 and answer.json()["parameter"][0]["valueInteger"] == 15
    assert {r["status"] for r in _requests(database, "asha")} == {"revoked"}
    assert client.post("/Patient/nobody/$stop-caring-contacts").status_code == 404


def test_sms_by_the_signed_webhook_retried_after_a_provider_error(gateway, now) -> None:  # type: ignore[no-untyped-def]
    settings, database = gateway
    phone = [{"system": "phone", "value": "+1 312 555 0142", "use": "mobile"}]
    _write(
        database,
        svc.update,
        "Patient",
        "maria",
        {**_patient("maria", "es", phone), "name": [{"given": ["María"], "family": "López"}]},
        SYSTEM,
    )
    us = settings.model_copy(update={"default_country": "US"})
    create_app(us, database=database)
    _admit_and_discharge(database, "maria")
    posts: list[httpx.Request] = []

    def provider(request: httpx.Request) -> httpx.Response:
        posts.append(request)
        return httpx.Response(503 if len(posts) == 1 else 202, json={"id": f"sms-{len(posts)}"})

    worker = DeliveryWorker(database, us, transport=httpx.MockTransport(provider))
    try:
        _run(worker, now, now.at + timedelta(days=7), timedelta(days=1))  # the first falls due
        assert len(posts) == 1 and database.read(outbox.counts) == {"pending": 1}
        _run(worker, now, now.at + timedelta(minutes=5), timedelta(minutes=5))  # after the backoff
    finally:
        worker.close()
    assert len(posts) == 2 and str(posts[1].url) == WEBHOOK
    body = json.loads(posts[1].content)
    assert body["to"] == "+1 312 555 0142" and body["language"] == "es" and body["channel"] == "sms"
    assert "988" in body["text"] and "no las 24 horas" in body["text"] and "María" in body["text"]
    assert verify(SECRET, posts[1].headers[SIGNATURE_HEADER], posts[1].content)
    assert (
        posts[0].headers["X-FHIR-Gateway-Delivery"] == posts[1].headers["X-FHIR-Gateway-Delivery"]
    )
    [sent] = _sent(database, "maria")
    assert sent["medium"][0]["coding"][0]["code"] == "SMSWRIT"


def test_an_smtp_failure_is_retried_with_backoff_and_a_refusal_is_dead_lettered(
    gateway, smtp_server, now
) -> None:  # type: ignore[no-untyped-def]
    settings, database = gateway
    _write(
        database,
        svc.update,
        "Patient",
        "asha",
        _patient("asha", "hi", [{"system": "email", "value": "asha.rao@example.in"}]),
        SYSTEM,
    )
    _admit_and_discharge(database, "asha")
    smtp_server.mailbox.refuse_next[:] = ["451 4.3.0 Mailbox busy, try again later"]
    worker = DeliveryWorker(database, settings)
    try:
        _run(worker, now, now.at + timedelta(days=7), timedelta(days=1))  # the first falls due
        [row] = database.read(outbox.list_rows)
        assert row.status == "pending" and row.attempts == 1 and "451" in (row.last_error or "")
        assert row.next_attempt_at > now.at and smtp_server.mailbox.received == []
        _run(worker, now, row.next_attempt_at + timedelta(seconds=1), timedelta(minutes=10))
        assert len(smtp_server.mailbox.received) == 1
        smtp_server.mailbox.refuse_next[:] = ["550 5.1.1 No such mailbox here"]
        _run(worker, now, DISCHARGED + timedelta(days=15), timedelta(days=1))
    finally:
        worker.close()
    rows = database.read(outbox.list_rows)
    assert [r.status for r in rows] == ["delivered", "dead"] and "550" in (rows[1].last_error or "")
    assert len(_sent(database, "asha")) == 1


def test_the_schedule_is_data_a_user_edits_through_the_api(gateway, client, now) -> None:  # type: ignore[no-untyped-def]
    _, database = gateway
    assert database.write(contacts.seed) == 2 and database.write(contacts.seed) == 0
    schedule = client.get("/PlanDefinition/caring-contacts").json()
    weekly_only = {**schedule, "action": schedule["action"][:1]}  # a programme of four weeks
    assert client.put("/PlanDefinition/caring-contacts", json=weekly_only).status_code == 200
    _write(
        database,
        svc.update,
        "Patient",
        "asha",
        _patient("asha", "hi", [{"system": "email", "value": "asha.rao@example.in"}]),
        SYSTEM,
    )
    _admit_and_discharge(database, "asha")
    assert len(_requests(database, "asha")) == 4
