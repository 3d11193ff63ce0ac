"""Deadlines that mean something, from real St Mary's discharges with the clock controlled. Jane Doe
is discharged on 2025-03-10 at 14:00 CDT; her psychiatry follow-up (Springfield CMHC) is due by the
end of day 7 (2025-03-17 23:59:59 CDT), her psychotherapy intake by the end of day 14. A partner
has 48 h to acknowledge (MONITOR_ACK_HOURS); escalation comes 72 h (MONITOR_ESCALATE_HOURS) after a
referral became overdue."""

# ruff: noqa: F811
from __future__ import annotations

from typing import Any

from careplan_helpers import adt, validate_r4b
from monitor_helpers import Monitored

from fhir_gateway import monitors
from fhir_gateway.monitors import MONITOR_FLAGS

FOLLOW_UP = "Psychiatry follow-up visit within 7 days"
THERAPY = "Psychotherapy intake within 14 days"
FHIR = {"Content-Type": "application/fhir+json"}


def referral(m: Monitored, title: str) -> dict[str, Any]:
    return m.gw.task_of(m.gw.requests_of(m.plan())[title])


def run(m: Monitored) -> monitors.RunSummary:
    return monitors.run_all(m.gw.database, m.gw.settings)


def tags(task: dict[str, Any]) -> set[str]:
    return {t["code"] for t in task.get("meta", {}).get("tag", []) if t["system"] == MONITOR_FLAGS}


def flags_about(m: Monitored, code: str, task: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in m.flags(code) if f"Task/{task['id']}" in f["code"]["text"]]


def escalations(m: Monitored, task: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        c
        for c in m.communications("escalated")
        if {"reference": f"Task/{task['id']}"} in c["about"]
    ]


def put(m: Monitored, doc: dict[str, Any], *, keep_meta: bool = False) -> dict[str, Any]:
    """PUT as a client that read ``doc`` (with ``keep_meta``: sending back its tags too)."""
    body = doc if keep_meta else {k: v for k, v in doc.items() if k != "meta"}
    response = m.gw.client.put(f"/{doc['resourceType']}/{doc['id']}", json=body, headers=FHIR)
    assert response.status_code == 200, response.text
    return response.json()


def approve(m: Monitored, when: str) -> None:
    m.at(when)
    put(m, {**m.plan(), "status": "active"})


# -- (a) a plan approved after its deadline ---------------------------------------------------------


def test_a_plan_approved_after_its_deadline_sends_urgent_referrals_and_flags_them_late(
    reviewed: Monitored,
) -> None:
    reviewed.discharge()
    approve(reviewed, "20250325100000")  # a week after the follow-up's deadline, 3 days after +72 h
    task = referral(reviewed, FOLLOW_UP)
    assert task["status"] == "requested" and task["priority"] == "urgent"
    assert task["restriction"]["period"]["end"] == "2025-03-17T23:59:59-05:00"  # never reset
    [late] = flags_about(reviewed, "late", task)  # at once, before any monitor run
    assert (
        late["status"] == "active"
        and "approved, after its clinical deadline" in late["code"]["text"]
    )
    assert late["code"]["coding"][0] == {
        "system": MONITOR_FLAGS,
        "code": "late",
        "display": "Referral late when sent",
    }
    validate_r4b(late)
    assert referral(reviewed, THERAPY)["priority"] == "urgent"  # day 14 had passed too


def test_a_referral_sent_after_its_deadline_escalates_only_72_hours_later(
    reviewed: Monitored,
) -> None:
    reviewed.discharge()
    approve(reviewed, "20250325100000")
    run(reviewed)  # overdue from the moment it went out, but not escalated as it goes out
    task = referral(reviewed, FOLLOW_UP)
    assert tags(task) == {"overdue"} and escalations(reviewed, task) == []
    [overdue] = [
        f
        for f in flags_about(reviewed, "overdue", task)
        if "past-deadline" in str(f["code"]["coding"])
    ]
    assert "ESCALATED" not in overdue["code"]["text"]

    reviewed.at("20250328095900")  # 71 h 59 min after it went out
    run(reviewed)
    assert tags(referral(reviewed, FOLLOW_UP)) == {"overdue"}
    reviewed.at("20250328100100")  # 72 h 1 min after
    assert run(reviewed).escalated >= 1
    task = referral(reviewed, FOLLOW_UP)
    assert tags(task) == {"overdue", "escalated"} and escalations(reviewed, task)


def test_a_plan_approved_in_time_is_routine_and_raises_no_late_item(reviewed: Monitored) -> None:
    reviewed.discharge()
    approve(reviewed, "20250311090000")
    task = referral(reviewed, FOLLOW_UP)
    assert task["priority"] == "routine" and reviewed.flags("late") == []


# -- (b) re-routing -------------------------------------------------------------------------------


def test_a_rerouted_referral_starts_a_new_ack_window_and_keeps_its_clinical_deadline(
    monitored: Monitored,
) -> None:
    # therapy goes to Clinica Esperanza, then (re-routed) to Springfield CMHC
    monitored.discharge(language="es^Spanish^ISO6391")
    monitored.at("20250312150000")  # 49 h: Clinica has not acknowledged it
    run(monitored)
    first = referral(monitored, THERAPY)
    assert first["owner"]["reference"] == "Organization/clinica-esperanza" and tags(first) == {
        "overdue"
    }
    monitored.at("20250312160000")
    first = referral(monitored, THERAPY)  # as the partner reads it: tagged overdue
    put(
        monitored,
        {**first, "status": "rejected", "statusReason": {"text": "no capacity"}},
        keep_meta=True,
    )
    [second] = [
        t
        for t in monitored.gw.all("Task", ("focus", first["focus"]["reference"]))
        if t["id"] != first["id"]
    ]
    assert (
        second["owner"]["reference"] == "Organization/springfield-cmhc"
        and second["status"] == "requested"
    )
    assert tags(second) == set()  # it reaches its new partner clean, not already overdue
    assert second["restriction"] == first["restriction"]  # the clinical deadline is unchanged
    monitored.at("20250314155900")  # 47 h 59 min after the re-route
    run(monitored)
    assert tags(monitored.gw.read(f"Task/{second['id']}")) == set()
    monitored.at("20250314160100")
    run(monitored)
    assert tags(monitored.gw.read(f"Task/{second['id']}")) == {"overdue"}


def test_a_referral_reassigned_by_the_case_manager_gives_the_new_partner_its_own_window(
    monitored: Monitored,
) -> None:
    monitored.discharge()
    task = referral(monitored, FOLLOW_UP)
    monitored.at("20250312160000")  # 50 h after it went to Springfield CMHC
    put(
        monitored,
        {
            **task,
            "owner": {"reference": "Organization/sangamon-crisis", "display": "Sangamon Crisis"},
        },
    )
    run(monitored)
    assert tags(referral(monitored, FOLLOW_UP)) == set()  # Sangamon received it a moment ago
    monitored.at("20250314160100")
    run(monitored)
    task = referral(monitored, FOLLOW_UP)
    assert tags(task) == {"overdue"}
    assert (
        "not accepted within 48 h of receiving it (overdue since 2025-03-14 21:00 UTC)"
        in " ".join(f["code"]["text"] for f in flags_about(monitored, "overdue", task))
    )


def test_a_second_reroute_of_the_same_referral_raises_a_work_item_at_once(
    monitored: Monitored,
) -> None:
    monitored.discharge(language="es^Spanish^ISO6391")
    first = referral(monitored, THERAPY)
    monitored.at("20250311100000")
    rejected = {**first, "status": "rejected", "statusReason": {"text": "no capacity"}}
    put(monitored, rejected)  # re-route 1
    assert monitored.flags("rerouted") == []
    [second] = [
        t
        for t in monitored.gw.all("Task", ("focus", first["focus"]["reference"]))
        if t["id"] != first["id"]
    ]
    monitored.at("20250311110000")
    put(monitored, {**second, "owner": {"reference": "Organization/lincoln-therapy"}})  # re-route 2
    [item] = monitored.flags("rerouted")
    assert item["status"] == "active" and "re-routed 2 times" in item["code"]["text"]
    assert (
        "Organization/clinica-esperanza → Organization/springfield-cmhc → Organization/lincoln-therapy"
        in item["code"]["text"]
    )
    put(
        monitored,
        {
            **monitored.gw.read(f"Task/{second['id']}"),
            "description": "Psychotherapy intake (urgent)",
        },
    )
    assert len(monitored.flags("rerouted")) == 1  # written again: the same work item


# -- (c) an acknowledgement window that ends after the deadline -------------------------------------


def test_an_ack_window_ending_after_the_deadline_raises_a_work_item_at_once(
    reviewed: Monitored,
) -> None:
    reviewed.discharge()
    approve(reviewed, "20250316120000")  # 48 h from now is past the end of 17 March
    task = referral(reviewed, FOLLOW_UP)
    [item] = flags_about(reviewed, "deadline-at-risk", task)
    assert (
        "acknowledgement window ends 2025-03-18 17:00 UTC, after the clinical deadline"
        in item["code"]["text"]
    )
    assert task["priority"] == "routine" and flags_about(reviewed, "late", task) == []
    therapy = referral(reviewed, THERAPY)  # due on day 14: time enough
    assert flags_about(reviewed, "deadline-at-risk", therapy) == []


def test_a_discharge_in_good_time_raises_no_deadline_work_item(monitored: Monitored) -> None:
    monitored.discharge()
    assert monitored.flags("deadline-at-risk") == [] and monitored.flags("late") == []


def test_a_late_discharge_message_is_urgent_and_late_at_once(monitored: Monitored) -> None:
    monitored.at("20250319080000")  # the A03 reaches the gateway two days after the 7-day deadline
    monitored.gw.send(adt(discharged="20250310140000", sent="20250319080000"))
    task = referral(monitored, FOLLOW_UP)
    assert task["priority"] == "urgent" and flags_about(monitored, "late", task)
