"""What referral transitions set off: re-routing to the next eligible partner, the ServiceRequest
and CarePlan following their Tasks, a revoked plan closing its referrals, and the history of
every transition with the time spent in each state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from careplan_helpers import validate_r4b
from fastapi.testclient import TestClient
from workflow_helpers import (
    CASE_MANAGER,
    ManualClock,
    directory,
    install_test_callers,
    partner,
    put,
    read,
    referral,
    search,
)

from fhir_gateway.monitors import MONITOR_FLAGS
from fhir_gateway.workflow import PROGRESS_EXT, durations, time_in_states

PARTNERS = {"alpha": "Alpha Housing", "beta": "Beta Shelter", "gamma": "Gamma Homes"}


@pytest.fixture
def wf(app):  # type: ignore[no-untyped-def]
    install_test_callers(app)
    with TestClient(app, base_url="http://testserver") as client:
        directory(client, PARTNERS)
        yield client


def _set(client, ref: str, headers: dict, **fields):  # type: ignore[no-untyped-def,type-arg]
    doc = {k: v for k, v in read(client, ref).items() if k != "meta"}
    doc.update(fields)
    response = client.put(f"/{ref}", json=doc, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _tasks_of(client, sr: str) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    return sorted(search(client, f"Task?focus=ServiceRequest/{sr}"), key=lambda t: t["authoredOn"])


def test_a_rejected_referral_goes_to_the_next_partner_until_none_is_left(wf) -> None:
    referral(wf, owner="alpha")
    _set(wf, "Task/t1", partner("alpha"), status="rejected", statusReason={"text": "no capacity"})
    tasks = _tasks_of(wf, "sr1")
    second = next(t for t in tasks if t["id"] != "t1")
    assert second["owner"]["reference"] == "Organization/beta" and second["status"] == "requested"
    assert second["partOf"] == [{"reference": "Task/t1"}]
    assert (
        second["focus"] == {"reference": "ServiceRequest/sr1"}
        and second["restriction"]["period"]["end"] == "2025-03-17"
    )
    assert read(wf, "ServiceRequest/sr1")["performer"][0]["reference"] == "Organization/beta"

    _set(
        wf,
        f"Task/{second['id']}",
        partner("beta"),
        status="rejected",
        statusReason={"text": "out of area"},
    )
    third = next(t for t in _tasks_of(wf, "sr1") if t["id"] not in ("t1", second["id"]))
    assert third["owner"]["reference"] == "Organization/gamma"
    assert third["partOf"] == [{"reference": "Task/t1"}]  # every re-route hangs off the first Task

    _set(
        wf,
        f"Task/{third['id']}",
        partner("gamma"),
        status="rejected",
        statusReason={"text": "full"},
    )
    assert len(_tasks_of(wf, "sr1")) == 3  # nobody left: no fourth Task
    request = read(wf, "ServiceRequest/sr1")
    assert request["status"] == "on-hold"
    assert "case manager" in request["note"][-1]["text"]
    [item] = search(wf, f"Flag?_tag={MONITOR_FLAGS}|unassigned")  # not a silent gap
    assert (
        "every eligible partner declined it (Organization/alpha, Organization/beta, Organization/gamma)"
        in (item["code"]["text"])
    )
    assert item["status"] == "active"


def test_the_second_reroute_of_a_referral_is_a_work_item_at_once(wf) -> None:
    referral(wf, owner="alpha")
    _set(wf, "Task/t1", partner("alpha"), status="rejected", statusReason={"text": "no capacity"})
    assert search(wf, f"Flag?_tag={MONITOR_FLAGS}|rerouted") == []  # once is routine
    second = next(t for t in _tasks_of(wf, "sr1") if t["id"] != "t1")
    _set(
        wf,
        f"Task/{second['id']}",
        partner("beta"),
        status="rejected",
        statusReason={"text": "out of area"},
    )
    [item] = search(wf, f"Flag?_tag={MONITOR_FLAGS}|rerouted")
    assert item["status"] == "active" and item["subject"] == {"reference": "Patient/p1"}
    assert (
        "re-routed 2 times: Organization/alpha → Organization/beta → Organization/gamma"
        in item["code"]["text"]
    )


def test_a_failed_referral_puts_its_request_on_hold_for_the_case_manager(wf) -> None:
    referral(wf, owner="alpha", status="accepted")
    _set(
        wf,
        "Task/t1",
        partner("alpha"),
        status="failed",
        statusReason={"text": "client unreachable"},
    )
    assert read(wf, "ServiceRequest/sr1")["status"] == "on-hold"
    assert len(_tasks_of(wf, "sr1")) == 1


def _plan(client, requests: list[str]) -> None:  # type: ignore[no-untyped-def]
    put(
        client,
        {
            "resourceType": "CarePlan",
            "id": "cp1",
            "status": "active",
            "intent": "plan",
            "subject": {"reference": "Patient/p1"},
            "activity": [{"reference": {"reference": f"ServiceRequest/{r}"}} for r in requests],
        },
    )


def _progress(plan: dict) -> dict[str, int]:  # type: ignore[type-arg]
    ext = next(e for e in plan["extension"] if e["url"] == PROGRESS_EXT)
    return {e["url"]: e["valueInteger"] for e in ext["extension"]}


def test_the_plan_completes_when_every_request_is_completed_or_revoked(wf) -> None:
    referral(wf, owner="alpha", sr="sr1", task="t1", plan="cp1")
    referral(wf, owner="alpha", sr="sr2", task="t2", plan="cp1")
    _plan(wf, ["sr1", "sr2"])
    put(
        wf,
        {
            "resourceType": "Procedure",
            "id": "proc1",
            "status": "completed",
            "subject": {"reference": "Patient/p1"},
            "basedOn": [{"reference": "ServiceRequest/sr1"}],
            "code": {"text": "housing navigation"},
        },
    )
    for status in ("accepted", "in-progress"):
        _set(wf, "Task/t1", partner("alpha"), status=status)
    _set(
        wf,
        "Task/t1",
        partner("alpha"),
        status="completed",
        output=[{"type": {"text": "result"}, "valueReference": {"reference": "Procedure/proc1"}}],
    )
    assert read(wf, "ServiceRequest/sr1")["status"] == "completed"
    plan = read(wf, "CarePlan/cp1")
    assert plan["status"] == "active"
    assert _progress(plan) == {"total": 2, "completed": 1, "active": 1}
    assert plan["activity"][0]["outcomeReference"] == [{"reference": "Procedure/proc1"}]

    _set(wf, "ServiceRequest/sr2", CASE_MANAGER, status="revoked")
    assert read(wf, "Task/t2")["status"] == "cancelled"  # a revoked request cancels its open Task
    plan = read(wf, "CarePlan/cp1")
    assert plan["status"] == "completed" and "end" in plan["period"]
    assert _progress(plan) == {"total": 2, "completed": 1, "revoked": 1}


def test_a_plan_whose_requests_were_all_revoked_is_not_completed(wf) -> None:
    referral(wf, owner="alpha", sr="sr1", task="t1", plan="cp1")
    _plan(wf, ["sr1"])
    _set(wf, "ServiceRequest/sr1", CASE_MANAGER, status="revoked")
    assert read(wf, "CarePlan/cp1")["status"] == "active"


def test_a_revoked_plan_revokes_its_requests_and_cancels_open_tasks_but_leaves_finished_ones(
    wf,
) -> None:
    referral(wf, owner="alpha", sr="sr1", task="t1", plan="cp1", status="accepted")
    referral(wf, owner="beta", sr="sr2", task="t2", plan="cp1")
    referral(wf, owner="alpha", sr="sr3", task="t3", plan="cp1", status="accepted")
    _plan(wf, ["sr1", "sr2", "sr3"])
    _set(wf, "Task/t3", partner("alpha"), status="completed")
    _set(wf, "CarePlan/cp1", CASE_MANAGER, status="revoked")
    assert [read(wf, f"ServiceRequest/sr{i}")["status"] for i in (1, 2, 3)] == [
        "revoked",
        "revoked",
        "completed",
    ]
    assert [read(wf, f"Task/t{i}")["status"] for i in (1, 2, 3)] == [
        "cancelled",
        "cancelled",
        "completed",
    ]
    assert read(wf, "Task/t1")["statusReason"]["text"] == "The referral was revoked"


def test_every_transition_has_a_provenance_and_the_time_in_each_state_is_reported(
    wf, database
) -> None:
    clock = ManualClock()
    referral(wf, owner="alpha")
    for hours, status in (
        (1, "accepted"),
        (2, "in-progress"),
        (3, "on-hold"),
        (1, "in-progress"),
        (4, "completed"),
    ):
        clock.advance(hours=hours)
        _set(wf, "Task/t1", partner("alpha"), status=status, statusReason={"text": status})
    provenances = search(wf, "Provenance?target=Task/t1&_count=100")
    steps = sorted((p["recorded"], p["activity"]["text"]) for p in provenances)
    assert [s for _, s in steps] == [
        "(new) → requested",
        "requested → accepted",
        "accepted → in-progress",
        "in-progress → on-hold",
        "on-hold → in-progress",
        "in-progress → completed",
    ]
    assert all(p["agent"][0]["who"] for p in provenances)
    for provenance in provenances:  # written without the schema pass (workflow.flush_provenance)
        validate_r4b(provenance)
    owner_steps = [p for p in provenances if p["activity"]["text"].startswith("requested")]
    assert owner_steps[0]["agent"][0]["who"] == {"reference": "Organization/alpha"}

    spans = database.read(time_in_states, "t1")
    assert [s.status for s in spans] == [
        "requested",
        "accepted",
        "in-progress",
        "on-hold",
        "in-progress",
        "completed",
    ]
    spent = durations(spans, until=clock.now + timedelta(days=30))
    assert spent == {
        "requested": timedelta(hours=1),
        "accepted": timedelta(hours=2),
        "in-progress": timedelta(hours=3 + 4),
        "on-hold": timedelta(hours=1),
        "completed": timedelta(0),
    }
