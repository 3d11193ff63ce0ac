"""The workflow's rules at the grain of an event: a plan's progress stored once per transaction
however many of its referrals changed, one Provenance per agent and transaction naming every
referral transition, and a partner push queued as its Task version and built as it is sent."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from careplan_helpers import Gateway, adt
from fastapi.testclient import TestClient
from workflow_helpers import (
    CASE_MANAGER,
    directory,
    install_test_callers,
    put,
    read,
    referral,
    search,
    transitions,
)

from fhir_gateway.context import SYSTEM
from fhir_gateway.errors import BusinessRule
from fhir_gateway.notifications import DELIVERY_HEADER
from fhir_gateway.services import lookup
from fhir_gateway.store import outbox
from fhir_gateway.store.db import Database
from fhir_gateway.store.statements import counting
from fhir_gateway.workers.delivery import DeliveryWorker
from fhir_gateway.workflow import PROGRESS_EXT, PUSH_CHANNEL

TRANSITION_EXT = "http://fhir-gateway.org/fhir/StructureDefinition/task-transition"


@pytest.fixture
def wf(app):  # type: ignore[no-untyped-def]
    install_test_callers(app)
    with TestClient(app, base_url="http://testserver") as client:
        directory(client, {"alpha": "Alpha Housing"})
        yield client


def _progress(plan: dict[str, Any]) -> dict[str, int]:
    ext = next(e for e in plan["extension"] if e["url"] == PROGRESS_EXT)
    return {e["url"]: e["valueInteger"] for e in ext["extension"]}


def _revoke_in_one_transaction(client: TestClient, requests: list[str]) -> None:
    entries = []
    for sr in requests:
        doc = {k: v for k, v in read(client, f"ServiceRequest/{sr}").items() if k != "meta"}
        entries.append(
            {
                "resource": {**doc, "status": "revoked"},
                "request": {"method": "PUT", "url": f"ServiceRequest/{sr}"},
            }
        )
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    response = client.post("/", json=bundle, headers=CASE_MANAGER)
    assert response.status_code == 200, response.text


def test_revoking_several_referrals_at_once_stores_the_plan_once_with_its_progress(wf) -> None:
    requests = [f"sr{n}" for n in range(1, 5)]
    for n, sr in enumerate(requests, 1):
        referral(wf, owner="alpha", sr=sr, task=f"t{n}", plan="cp1")
    put(
        wf,
        {
            "resourceType": "CarePlan",
            "id": "cp1",
            "status": "active",
            "intent": "plan",
            "subject": {"reference": "Patient/p1"},
            "activity": [{"reference": {"reference": f"ServiceRequest/{r}"}} for r in requests],
        },
    )
    version = int(read(wf, "CarePlan/cp1")["meta"]["versionId"])

    _revoke_in_one_transaction(wf, requests[:3])
    plan = read(wf, "CarePlan/cp1")
    assert int(plan["meta"]["versionId"]) == version + 1  # one new version, not three
    assert _progress(plan) == {"total": 4, "active": 1, "revoked": 3}
    assert plan["status"] == "active"
    # the gateway cancelled the three open Tasks: one Provenance for all three
    cancelled = [
        p for p in search(wf, "Provenance?target=Task/t1") if "cancelled" in p["activity"]["text"]
    ]
    assert len(cancelled) == 1
    assert sorted(transitions(cancelled[0])) == ["requested → cancelled"] * 3
    targets = {t["reference"].split("/_history")[0] for t in cancelled[0]["target"]}
    assert targets == {"Task/t1", "Task/t2", "Task/t3"}


def test_a_discharge_records_all_its_referrals_in_one_provenance(auto_gateway: Gateway) -> None:
    auto_gateway.send(adt())
    referrals = [
        t
        for t in auto_gateway.all("Task")
        if (t.get("focus") or {}).get("reference", "").startswith("ServiceRequest/")
    ]
    assert len(referrals) >= 2
    provenances = [
        p
        for p in auto_gateway.all("Provenance")
        if any(e["url"] == TRANSITION_EXT for e in p.get("extension", []))
    ]
    assert len(provenances) == 1  # the event's, not one per Task
    [event] = provenances
    named = {t["reference"].split("/_history")[0] for t in event["target"]}
    assert named == {f"Task/{t['id']}" for t in referrals}
    assert all(transitions(event, f"Task/{t['id']}") for t in referrals)  # each says what it did
    assert event["agent"][0]["who"] == {"display": SYSTEM.client_id}


def test_a_transition_rolled_back_with_its_savepoint_gets_no_provenance(
    wf, database: Database
) -> None:
    referral(wf, owner="alpha")

    def accept_then_fail(session: Any) -> None:
        task = lookup.read(session, "Task/t1")
        assert task is not None
        try:
            with session.begin_nested():
                lookup.save(session, {**task, "status": "accepted"})
                raise BusinessRule("changed our mind")
        except BusinessRule:
            pass

    database.write(accept_then_fail)
    assert read(wf, "Task/t1")["status"] == "requested"
    steps = [s for p in search(wf, "Provenance?target=Task/t1") for s in transitions(p)]
    assert steps == ["(new) → requested"]


def test_a_partner_push_is_queued_as_its_task_and_built_when_sent(
    auto_gateway: Gateway,
) -> None:
    with counting(auto_gateway.database.engine) as count:
        auto_gateway.send(adt())
    pushes = [
        r
        for r in auto_gateway.database.read(outbox.list_rows, limit=1000)
        if r.channel == PUSH_CHANNEL
    ]
    assert pushes, "the demo directory has a partner with its own server"
    assert all(r.body == b"" and r.disclosures is None for r in pushes)  # nothing built yet
    focuses = [r.focus for r in pushes]
    assert len(set(focuses)) == len(focuses)  # one row per pushed Task version
    assert all(f is not None and f.startswith("Task/") and "/_history/" in f for f in focuses)
    # the batch's pushes are queued together: one INSERT for them all, not one per Task
    assert len(pushes) > 1 and count.by_table.get("INSERT outbox", 0) == 1

    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    worker = DeliveryWorker(
        auto_gateway.database, auto_gateway.settings, transport=httpx.MockTransport(handler)
    )
    try:
        worker.drain()
    finally:
        worker.close()
    by_row = {int(r.headers[DELIVERY_HEADER]): r for r in sent}
    for row in pushes:
        assert str(by_row[row.id].url) == row.url
        bundle = orjson.loads(by_row[row.id].content)
        assert bundle["type"] == "transaction"
        docs = [e["resource"] for e in bundle["entry"]]
        assert [d["resourceType"] for d in docs] == ["ServiceRequest", "Task"]
        task_id, version = row.focus.split("/")[1], row.focus.split("/")[3]  # type: ignore[union-attr]
        assert docs[1]["id"] == task_id
        stored = auto_gateway.database.read(lookup.read, f"Task/{task_id}")
        assert stored is not None and stored["meta"]["versionId"] == version
        assert docs[1]["status"] == stored["status"] == "requested"
        assert docs[1]["focus"]["reference"] == f"ServiceRequest/{docs[0]['id']}"
    after = {r.id: r.status for r in auto_gateway.database.read(outbox.list_rows, limit=1000)}
    assert {after[r.id] for r in pushes} == {"delivered"}
