"""Overdue referrals from a real discharge (auto mode: the referrals go out at 14:00 CDT on 10 March).
The psychiatry follow-up goes to Springfield CMHC (which runs its own FHIR server); its deadline is
the end of day 7, 2025-03-17T23:59:59-05:00. Acknowledgement is due within 48 h, escalation 72 h later."""

from __future__ import annotations

from typing import Any

from careplan_helpers import validate_r4b
from monitor_helpers import Monitored
from typer.testing import CliRunner

from fhir_gateway import monitors
from fhir_gateway.monitors import MONITOR_FLAGS
from fhir_gateway.store import outbox

FOLLOW_UP = "Psychiatry follow-up visit within 7 days"
THERAPY = "Psychotherapy intake within 14 days"


def referral(m: Monitored, title: str) -> dict[str, Any]:
    request = m.gw.requests_of(m.plan())[title]
    return m.gw.task_of(request)


def run(m: Monitored) -> monitors.RunSummary:
    return monitors.run_all(m.gw.database, m.gw.settings)


def tags(task: dict[str, Any]) -> set[str]:
    return {t["code"] for t in task.get("meta", {}).get("tag", []) if t["system"] == MONITOR_FLAGS}


def accept(m: Monitored, task: dict[str, Any]) -> None:
    response = m.gw.client.put(
        f"/Task/{task['id']}",
        json={**task, "status": "accepted"},
        headers={"Content-Type": "application/fhir+json"},
    )
    assert response.status_code == 200, response.text


def test_a_referral_not_accepted_within_48_hours_is_flagged_once(monitored: Monitored) -> None:
    monitored.discharge()
    monitored.at("20250312135900")  # 47 h 59 min after it was requested
    run(monitored)
    assert monitored.flags() == []
    monitored.at("20250312140100")
    first = run(monitored)
    task = referral(monitored, FOLLOW_UP)
    assert (
        tags(task) == {"overdue"} and task["status"] == "requested" and "businessStatus" not in task
    )
    flag = next(f for f in monitored.flags("overdue") if f"Task/{task['id']}" in f["code"]["text"])
    assert flag["subject"] == task["for"] and "not accepted within 48 h" in flag["code"]["text"]
    messages = [
        c
        for c in monitored.communications("unacknowledged")
        if {"reference": f"Task/{task['id']}"} in c["about"]
    ]
    assert sorted(r["reference"] for c in messages for r in c["recipient"]) == sorted(
        [task["owner"]["reference"], monitored.plan()["careTeam"][0]["reference"]]
    )
    second = run(monitored)  # the same condition, looked at again
    assert second.flagged == 0 and first.flagged == len(monitored.flags("overdue"))
    assert len(monitored.communications("unacknowledged")) == len(
        [c for c in monitored.gw.all("Communication") if "unacknowledged" in str(c["category"])]
    )
    found = monitored.gw.client.get(f"/Task?_tag={MONITOR_FLAGS}|overdue&_count=100").json()
    assert f"Task/{task['id']}" in {f"Task/{e['resource']['id']}" for e in found.get("entry", [])}


def test_the_owner_with_its_own_server_gets_the_notice_pushed(monitored: Monitored) -> None:
    monitored.discharge()
    monitored.at("20250312140100")
    run(monitored)
    task = referral(monitored, FOLLOW_UP)
    notice = next(
        c
        for c in monitored.communications("unacknowledged")
        if c["recipient"] == [{"reference": task["owner"]["reference"]}]
        and {"reference": f"Task/{task['id']}"} in c["about"]
    )
    assert notice["payload"][0]["contentString"].startswith(f"Referral '{FOLLOW_UP}'")

    def pushes() -> list[Any]:
        rows = monitored.gw.database.read(outbox.list_rows, status=None, limit=1000)
        return [
            r
            for r in rows
            if r.channel == "partner-push"
            and b"monitor-flags" in r.body
            and (r.focus or "").startswith(f"Task/{task['id']}/")
        ]

    [row] = pushes()  # the tagged Task, once
    assert b'"code":"overdue"' in row.body and row.url.startswith("http")
    run(monitored)
    assert len(pushes()) == 1


def test_accepting_ends_the_unacknowledged_alert(monitored: Monitored) -> None:
    monitored.discharge()
    monitored.at("20250312140100")
    run(monitored)
    accept(monitored, referral(monitored, FOLLOW_UP))
    summary = run(monitored)
    task = referral(monitored, FOLLOW_UP)
    assert tags(task) == set() and summary.resolved >= 1
    [flag] = [f for f in monitored.flags("overdue") if f"Task/{task['id']}" in f["code"]["text"]]
    assert flag["status"] == "inactive" and "end" in flag["period"]


def test_deadline_on_day_7_against_day_8(monitored: Monitored) -> None:
    monitored.discharge()
    monitored.at("20250311090000")
    accept(monitored, referral(monitored, FOLLOW_UP))
    monitored.at("20250317235900")  # the last minute of day 7: still in time
    run(monitored)
    assert "overdue" not in tags(referral(monitored, FOLLOW_UP))
    monitored.at("20250318000100")  # day 8
    run(monitored)
    task = referral(monitored, FOLLOW_UP)
    assert tags(task) == {"overdue"} and task["status"] == "accepted"
    assert any(
        f"Task/{task['id']}" in f["code"]["text"]
        for f in monitored.flags("overdue")
        if "past-deadline" in str(f["code"]["coding"])
    )


def test_escalation_after_the_second_threshold(monitored: Monitored) -> None:
    monitored.discharge()
    monitored.at("20250311090000")
    accept(monitored, referral(monitored, FOLLOW_UP))
    monitored.at("20250320235800")  # deadline + 71 h 58 min
    run(monitored)
    task = referral(monitored, FOLLOW_UP)
    assert tags(task) == {"overdue"}
    monitored.at("20250321000100")  # deadline + 72 h 1 min
    first = run(monitored)
    task = referral(monitored, FOLLOW_UP)
    assert tags(task) == {"overdue", "escalated"} and first.escalated >= 1
    [flag] = [f for f in monitored.flags("overdue") if f"Task/{task['id']}" in f["code"]["text"]]
    assert "ESCALATED" in flag["code"]["text"] and "PH" in str(flag["extension"])
    validate_r4b(flag)
    validate_r4b(task)
    escalations = [
        c
        for c in monitored.communications("escalated")
        if {"reference": f"Task/{task['id']}"} in c["about"]
    ]
    assert len(escalations) == 2  # care team (with the case manager) and the owner
    assert run(monitored).escalated == 0


def test_a_completed_referral_is_never_overdue(monitored: Monitored) -> None:
    monitored.discharge()
    monitored.at("20250311090000")
    task = referral(monitored, THERAPY)
    accept(monitored, task)
    task = referral(monitored, THERAPY)
    response = monitored.gw.client.put(
        f"/Task/{task['id']}",
        json={**task, "status": "completed"},
        headers={"Content-Type": "application/fhir+json"},
    )
    assert response.status_code == 200
    monitored.at("20250501090000")
    run(monitored)
    assert tags(referral(monitored, THERAPY)) == set()
    assert not any(f"Task/{task['id']}" in f["code"]["text"] for f in monitored.flags("overdue"))


def test_the_monitors_command_lists_overdue_referrals(
    monitored: Monitored, monkeypatch: Any
) -> None:
    from fhir_gateway.cli import app
    from fhir_gateway.settings import get_settings

    monitored.discharge()
    monitored.at("20250321000100")
    run(monitored)
    monkeypatch.setenv("FHIR_GATEWAY_DATABASE_URL", monitored.gw.settings.database_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["monitors"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    task = referral(monitored, FOLLOW_UP)
    assert f"Task/{task['id']}" in result.output and "ESCALATED" in result.output
    tagged = monitored.gw.all("Task", ("_tag", f"{MONITOR_FLAGS}|overdue"))
    assert f"overdue referrals: {len(tagged)}" in result.output and len(tagged) >= 1
