"""End to end: an A03 comes in, the care plan and its referral Tasks go out, the partners act —
one through the gateway's API (the "light" pattern), one on its own FHIR server, here a second
gateway instance on loopback to which the Tasks are pushed and whose changes are polled back (the
"direct" pattern) — and the CarePlan completes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from careplan_helpers import ZONE, adt
from fastapi.testclient import TestClient
from seeds import seed_templates
from workflow_helpers import FHIR, install_test_callers, partner, put, read, search, transitions

from fhir_gateway.app import create_app
from fhir_gateway.settings import Settings
from fhir_gateway.store import outbox
from fhir_gateway.store.db import Database
from fhir_gateway.store.migrate import upgrade
from fhir_gateway.workers.delivery import DeliveryWorker
from fhir_gateway.workflow import poll_partners
from fhir_gateway.workflow._partners import endpoint_of


@pytest.fixture
def partner_server(tmp_path, serve_app):  # type: ignore[no-untyped-def]
    """A second gateway instance with its own database: the partner's FHIR server."""
    url = f"sqlite:///{tmp_path / 'partner.db'}"
    database = Database(url)
    upgrade(database.engine)
    app = create_app(Settings(database_url=url, careplan_seed=False), database=database)
    yield serve_app(app)
    database.dispose()


@pytest.fixture
def gateway(partner_server, database, database_url):  # type: ignore[no-untyped-def]
    settings = Settings(
        database_url=database_url,
        base_url="http://gateway.test",
        careplan_mode="auto",
        sender_zones={"STMARYS": ZONE},
        partner_poll_interval=0,
    )
    app = create_app(
        settings, database=database
    )  # after the partner's: its settings are the live ones
    install_test_callers(app)
    seed_templates(database, settings)
    with TestClient(app, base_url="http://testserver") as client:
        for endpoint in search(client, "Endpoint"):  # the demo partners' servers: the loopback one
            put(
                client,
                {**{k: v for k, v in endpoint.items() if k != "meta"}, "address": partner_server},
            )
        client.settings = settings  # type: ignore[attr-defined]
        yield client


def _advance(
    http: httpx.Client | TestClient, ref: str, statuses: list[str], headers: dict[str, str]
) -> None:
    for status in statuses:
        doc = {k: v for k, v in read(http, ref).items() if k != "meta"}
        response = http.put(f"/{ref}", json={**doc, "status": status}, headers=headers)
        assert response.status_code == 200, response.text


def test_a_discharge_becomes_a_plan_partners_complete_and_the_plan_completes(
    gateway, partner_server, database
) -> None:
    answer = gateway.post(
        "/hl7v2", content=adt(), headers={"Content-Type": "x-application/hl7-v2+er7"}
    )
    assert answer.status_code == 200 and b"MSA|AA" in answer.content
    [plan] = search(gateway, "CarePlan")
    assert plan["status"] == "active"
    tasks = [t for t in search(gateway, "Task?_count=100") if t.get("focus")]  # the referrals
    assert tasks and all(t["status"] == "requested" for t in tasks)
    direct = {
        t["id"] for t in tasks if database.read(endpoint_of, t.get("owner", {}).get("reference"))
    }
    light = {t["id"] for t in tasks if t.get("owner")} - direct
    assert direct and light, "the demo directory has partners of both kinds"
    assert len(database.read(outbox.list_rows, status="pending")) >= len(
        direct
    )  # pushes queued with the plan

    worker = DeliveryWorker(database, gateway.settings)
    try:
        worker.drain()
    finally:
        worker.close()
    with httpx.Client(base_url=partner_server) as remote:
        for task_id in direct:  # the partner works on its own server
            assert read(remote, f"Task/{task_id}")["status"] == "requested"
            _advance(remote, f"Task/{task_id}", ["accepted", "in-progress", "completed"], FHIR)
    for task in tasks:
        if task["id"] in light:  # the partner works in the gateway
            _advance(
                gateway,
                f"Task/{task['id']}",
                ["accepted", "completed"],
                partner(task["owner"]["reference"].split("/")[1]),
            )
        elif task["id"] not in direct:  # nobody eligible: the case manager withdraws it
            _advance(gateway, task["focus"]["reference"], ["revoked"], FHIR)

    assert poll_partners(database, gateway.settings) == len(direct)
    assert all(read(gateway, f"Task/{t}")["status"] == "completed" for t in direct)
    first = f"Task/{sorted(direct)[0]}"
    history = search(gateway, f"Provenance?target={first}&_count=50")
    # the partner's change, mirrored in one request, is one Provenance naming the partner
    [mirrored] = [
        p for p in history if p["agent"][0]["who"].get("reference") == tasks_owner(tasks, first)
    ]
    assert transitions(mirrored, first) == ["requested → accepted", "accepted → completed"]
    assert len(mirrored["target"]) == 2  # both Task versions it made
    refs = [a["reference"]["reference"] for a in plan["activity"]]
    requests = [read(gateway, r) for r in refs if r.startswith("ServiceRequest/")]
    assert {r["status"] for r in requests} <= {"completed", "revoked"}
    final = read(gateway, f"CarePlan/{plan['id']}")
    assert final["status"] == "completed"


def tasks_owner(tasks: list[dict[str, Any]], ref: str) -> str:
    return next(t["owner"]["reference"] for t in tasks if f"Task/{t['id']}" == ref)
