"""Notifications end to end: Subscriptions made through the API, outbox rows written with the
change, and the delivery worker against a real HTTP receiver on loopback that fails, times out,
answers 429 and 500, and is down for a simulated hour (the clock is moved, nobody sleeps)."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from workflow_helpers import FHIR, ManualClock, Receiver, put, read, referral

from adapters.notifications import read_notification
from fhir_gateway.app import create_app
from fhir_gateway.notifications import CONTENT_EXT, FILTER_EXT, SECRET_EXT, TASK_TOPIC, verify
from fhir_gateway.settings import Settings
from fhir_gateway.store import outbox
from fhir_gateway.store.db import Database
from fhir_gateway.workers.delivery import DeliveryWorker

SECRET = "receiver-shared-secret"


@pytest.fixture
def gw(database, database_url):  # type: ignore[no-untyped-def]
    # the timeout is generous: a busy machine must not turn a 200 into a timeout (and a duplicate)
    settings = Settings(
        database_url=database_url,
        base_url="http://gw.test/fhir",
        outbox_timeout=2.0,
        outbox_backoff_base=10,
        outbox_backoff_max=600,
        outbox_batch_size=20,
        outbox_concurrency=6,
        partner_poll_interval=0,
    )
    app = create_app(settings, database=database)
    with TestClient(app, base_url="http://testserver") as client:
        client.settings = settings  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    rec = Receiver(hold=3.0).start()  # a request it holds outlasts the worker's timeout
    yield rec
    rec.stop()


def subscribe(
    client,
    endpoint: str,
    criteria: str = "Task?status=accepted,completed",
    sub_id: str = "s1",
    **channel: Any,
) -> dict:  # type: ignore[no-untyped-def,type-arg]
    body = {
        "resourceType": "Subscription",
        "id": sub_id,
        "status": "requested",
        "reason": "referrals",
        "criteria": criteria,
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "header": ["X-Tenant: county"],
            "extension": [{"url": SECRET_EXT, "valueString": SECRET}],
            **channel,
        },
    }
    return put(client, body)


def worker(client, seed: int = 1) -> DeliveryWorker:  # type: ignore[no-untyped-def]
    return DeliveryWorker(client.app.state.database, client.settings, rng=random.Random(seed))


def set_status(client, ref: str, status: str) -> None:  # type: ignore[no-untyped-def]
    doc = {k: v for k, v in read(client, ref).items() if k != "meta"}
    assert client.put(f"/{ref}", json={**doc, "status": status}, headers=FHIR).status_code == 200


def rows(client) -> list[outbox.OutboxRow]:  # type: ignore[no-untyped-def]
    return client.app.state.database.read(outbox.list_rows, limit=1000)


def test_a_subscription_is_activated_and_its_secret_never_served(gw) -> None:
    stored = subscribe(gw, "http://127.0.0.1:9/hook")
    assert stored["status"] == "active"
    assert (
        "extension" not in stored["channel"]
        and SECRET not in orjson.dumps(read(gw, "Subscription/s1")).decode()
    )
    bad = {**stored, "id": "s2", "criteria": "Task?no-such-param=1"}
    assert gw.put("/Subscription/s2", json=bad, headers=FHIR).status_code == 400


def test_the_outbox_row_is_written_with_the_change_or_not_at_all(gw) -> None:
    subscribe(gw, "http://127.0.0.1:9/hook")
    referral(gw, owner=None, status="requested")
    assert rows(gw) == []  # requested does not match the criteria
    task = {k: v for k, v in read(gw, "Task/t1").items() if k != "meta"}
    failing = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {**task, "status": "accepted"},
                "request": {"method": "PUT", "url": "Task/t1"},
            },
            {
                "resource": {"resourceType": "Patient", "id": "p1", "birthDate": "not a date"},
                "request": {"method": "PUT", "url": "Patient/p1"},
            },
        ],
    }
    assert gw.post("/", json=failing, headers=FHIR).status_code == 400
    assert rows(gw) == []  # rolled back together
    set_status(gw, "Task/t1", "accepted")
    [row] = rows(gw)
    assert (row.status, row.subscription, row.event_number, row.focus) == (
        "pending",
        "s1",
        1,
        "Task/t1/_history/2",
    )


def test_a_subscription_another_gateway_process_stores_is_matched_at_the_next_write(gw) -> None:
    # The active Subscriptions are parsed once per stored version of them, not once per
    # transaction (issue 21): one that another process stored is matched from the next write.
    referral(gw, owner=None, status="accepted")
    assert rows(gw) == []  # no Subscription yet: nothing matched, and that answer is kept
    elsewhere = Database(gw.settings.database_url)  # another process's pool and listener
    try:
        other = create_app(gw.settings, database=elsewhere)
        with TestClient(other, base_url="http://testserver") as client:
            subscribe(client, "http://127.0.0.1:9/hook")
    finally:
        elsewhere.dispose()  # its search-parameter listener too, before the database is dropped
    set_status(gw, "Task/t1", "completed")
    [row] = rows(gw)
    assert (row.subscription, row.focus) == ("s1", "Task/t1/_history/2")


def test_every_notification_arrives_once_signed_through_failures_timeouts_429_500_and_an_hour_down(
    gw, receiver
) -> None:
    clock = ManualClock()
    answers = {0: (500, {}), 1: None, 2: (429, {"Retry-After": "30"})}  # then 200
    receiver.script = lambda request, nth: answers.get(nth, (200, {})) if nth < 3 else (200, {})
    subscribe(gw, f"{receiver.url}/hook", payload="application/fhir+json")
    for i in range(6):
        referral(gw, owner=None, status="accepted", task=f"t{i}", sr=f"sr{i}")
    assert len(rows(gw)) == 6
    delivery = worker(gw)
    try:
        for _ in range(3):  # 500, timeout, 429: each answered by a retry later
            delivery.drain()
            clock.advance(minutes=2)
        receiver.stop()  # down for an hour: every attempt meanwhile fails to connect
        for _ in range(12):
            clock.advance(minutes=5)
            delivery.drain()
        assert all(r.status == "pending" for r in rows(gw))
        receiver.start()
        for _ in range(20):
            clock.advance(minutes=15)
            delivery.drain()
    finally:
        delivery.close()
    final = rows(gw)
    assert [r.status for r in final] == ["delivered"] * 6
    by_delivery: dict[str, list[Any]] = defaultdict(list)
    for request in receiver.received:
        by_delivery[request.delivery].append(request)
        assert verify(
            SECRET, request.headers.get("x-fhir-gateway-signature"), request.body, now=None
        )
        assert request.headers["x-tenant"] == "county"
        assert request.method == "PUT" and request.path.startswith("/hook/Task/t")
    assert sorted(by_delivery) == sorted(str(r.id) for r in final)
    for requests in by_delivery.values():
        codes = [r.answered for r in requests]
        assert codes[:3] == [500, None, 429] and codes[-1] == 200
        assert codes.count(200) == 1  # never again after a success
    attempts = gw.app.state.database.read(outbox.attempts_of, final[0].id)
    assert len(attempts) >= len(by_delivery[str(final[0].id)]) + 1  # the refused connections too
    assert any(a.error and "Connect" in a.error for a in attempts)


def test_retry_after_is_honoured(gw, receiver) -> None:
    clock = ManualClock()
    receiver.script = lambda request, nth: (429, {"Retry-After": "120"}) if nth == 0 else (200, {})
    subscribe(gw, f"{receiver.url}/hook")
    referral(gw, owner=None, status="accepted")
    delivery = worker(gw)
    try:
        delivery.drain()
        [row] = rows(gw)
        assert (row.next_attempt_at - clock.now).total_seconds() == pytest.approx(120, abs=1)
        clock.advance(seconds=119)
        assert delivery.drain() == []
        clock.advance(seconds=2)
        assert [r.outcome for r in delivery.drain()] == ["delivered"]
    finally:
        delivery.close()
    assert [r.answered for r in receiver.received] == [429, 200]


def test_a_refusal_is_dead_at_once_and_replay_delivers_it(gw, receiver) -> None:
    ManualClock()
    receiver.script = lambda request, nth: (404, {}) if nth == 0 else (200, {})
    subscribe(gw, f"{receiver.url}/hook")
    referral(gw, owner=None, status="accepted")
    delivery = worker(gw)
    try:
        assert [r.outcome for r in delivery.drain()] == ["dead"]
        assert delivery.drain() == []
        [row] = rows(gw)
        assert row.status == "dead" and row.last_status == 404
        assert gw.app.state.database.write(outbox.replay, None) == 1
        assert [r.outcome for r in delivery.drain()] == ["delivered"]
    finally:
        delivery.close()


def test_a_receiver_that_never_recovers_is_dead_lettered_after_72_hours(gw, receiver) -> None:
    clock = ManualClock()
    receiver.script = lambda request, nth: (503, {})
    subscribe(gw, f"{receiver.url}/hook")
    referral(gw, owner=None, status="accepted")
    start = clock.now
    delivery = worker(gw)
    try:
        while rows(gw)[0].status == "pending":
            delivery.drain()
            clock.advance(minutes=10)
            assert clock.now - start < timedelta(hours=80)
    finally:
        delivery.close()
    [row] = rows(gw)
    assert row.status == "dead"
    assert 70 <= (row.dead_at - start).total_seconds() / 3600 <= 72  # type: ignore[operator]
    assert row.attempts == len(receiver.received) > 10


def test_backport_topic_notifications_carry_the_subscription_status_first(gw, receiver) -> None:
    ManualClock()
    put(
        gw,
        {
            "resourceType": "Subscription",
            "id": "topic1",
            "status": "requested",
            "reason": "my tasks",
            "criteria": TASK_TOPIC,
            "_criteria": {
                "extension": [{"url": FILTER_EXT, "valueString": "Task?owner=Organization/alpha"}]
            },
            "channel": {
                "type": "rest-hook",
                "endpoint": f"{receiver.url}/notify",
                "payload": "application/fhir+json",
                "_payload": {"extension": [{"url": CONTENT_EXT, "valueCode": "id-only"}]},
            },
        },
    )
    referral(gw, owner="alpha", status="draft")  # drafts are not in the topic
    referral(gw, owner="beta", status="requested", task="t2", sr="sr2")  # not ours
    set_status(gw, "Task/t1", "requested")
    referral(gw, owner="alpha", status="requested", task="t3", sr="sr3")
    delivery = worker(gw)
    try:
        delivery.drain()
    finally:
        delivery.close()
    bundles = sorted(
        (orjson.loads(r.body) for r in receiver.received),
        key=lambda b: int(b["entry"][0]["resource"]["parameter"][4]["valueString"]),
    )
    assert [b["type"] for b in bundles] == ["history", "history"]
    focus = []
    for n, bundle in enumerate(bundles, start=1):
        status = {p["name"]: p for p in bundle["entry"][0]["resource"]["parameter"]}
        assert status["events-since-subscription-start"]["valueString"] == str(n)
        event = {p["name"]: p for p in status["notification-event"]["part"]}
        focus.append(event["focus"]["valueReference"]["reference"])
        assert "resource" not in bundle["entry"][1]  # id-only
    assert focus == ["http://gw.test/fhir/Task/t1", "http://gw.test/fhir/Task/t3"]
    secret = gw.app.state.database.read(outbox.secret_of, "topic1")
    assert all(
        verify(secret, r.headers["x-fhir-gateway-signature"], r.body) for r in receiver.received
    )


def test_an_ehr_subscribed_to_discharges_gets_a_davinci_message(gw, receiver) -> None:
    ManualClock()
    put(
        gw,
        {
            "resourceType": "Subscription",
            "id": "ehr1",
            "status": "requested",
            "reason": "discharges",
            "criteria": "Encounter?subject=Patient/p1",
            "channel": {
                "type": "message",
                "endpoint": f"{receiver.url}/fhir",
                "payload": "application/fhir+json",
            },
        },
    )
    put(
        gw,
        {
            "resourceType": "Patient",
            "id": "p1",
            "name": [{"family": "Doe"}],
            "identifier": [
                {"type": {"coding": [{"code": "MR"}]}, "system": "urn:mrn", "value": "7"}
            ],
        },
    )
    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": "Patient/p1"},
    }
    put(gw, encounter)  # an inpatient stay begins: the admission is announced by itself
    assert len(rows(gw)) == 1
    put(gw, {**encounter, "participant": [{"type": [{"text": "attending"}]}]})  # same stay
    assert len(rows(gw)) == 1
    put(gw, {**encounter, "status": "finished"})
    delivery = worker(gw)
    try:
        delivery.drain()
    finally:
        delivery.close()
    assert [r.path for r in receiver.received] == ["/fhir/$process-message"] * 2
    events = sorted(read_notification(orjson.loads(r.body)).event for r in receiver.received)
    assert events == ["notification-admit", "notification-discharge"]


def test_serve_with_the_worker_flag_delivers_in_the_background(
    database, database_url, receiver
) -> None:
    import time

    settings = Settings(
        database_url=database_url,
        outbox_worker=True,
        outbox_poll_interval=0.05,
        partner_poll_interval=0,
    )
    with TestClient(
        create_app(settings, database=database), base_url="http://testserver"
    ) as client:
        subscribe(client, f"{receiver.url}/hook")
        referral(client, owner=None, status="accepted")
        deadline = time.monotonic() + 20
        while not receiver.successes() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(receiver.successes()) == 1
    assert database.read(outbox.counts) == {"delivered": 1}


def test_outbox_commands_list_dead_letters_and_replay_them(gw, monkeypatch, database_url) -> None:
    from typer.testing import CliRunner

    from fhir_gateway.cli import app as cli
    from fhir_gateway.settings import get_settings

    ManualClock()
    subscribe(gw, "http://127.0.0.1:9/hook")
    referral(gw, owner=None, status="accepted")
    [row] = rows(gw)
    gw.app.state.database.write(
        outbox.claim, worker="w", limit=1, lease=timedelta(minutes=1), postgres=False
    )
    gw.app.state.database.write(
        outbox.finish, row.id, worker="w", outcome="dead", http_status=410, error="gone"
    )
    monkeypatch.setenv("FHIR_GATEWAY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        listed = runner.invoke(cli, ["outbox", "list", "--status", "dead"])
        assert listed.exit_code == 0 and f"{row.id}" in listed.output and "dead" in listed.output
        secret = runner.invoke(cli, ["outbox", "secret", "s1"])
        assert secret.output.strip() == SECRET
        replayed = runner.invoke(cli, ["outbox", "replay", str(row.id)])
        assert replayed.exit_code == 0 and "1 notification" in replayed.output
    finally:
        get_settings.cache_clear()
    assert rows(gw)[0].status == "pending"


def test_the_delivery_worker_runs_the_monitors_on_their_schedule(gw) -> None:
    clock = ManualClock()
    referral(gw, owner="slow-partner", status="requested")
    clock.advance(hours=49)  # past the 48 hours a partner has to acknowledge
    delivery = worker(gw)
    try:
        delivery.run_monitors_if_due()
        delivery.run_monitors_if_due()  # the same turn: nothing twice
    finally:
        delivery.close()
    flags = gw.get("/Flag").json()
    assert flags["total"] == 1
    tasks = gw.get(
        "/Task", params={"_tag": "http://fhir-gateway.org/fhir/CodeSystem/monitor-flags|overdue"}
    ).json()
    assert tasks["total"] == 1
