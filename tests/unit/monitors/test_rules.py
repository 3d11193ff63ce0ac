"""The pure rules of the monitors: what an Encounter change is, local days, overdue conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fhir_gateway.monitors import conditions
from fhir_gateway.monitors._days import day_number, end_of_day, parse
from fhir_gateway.monitors._visits import ADMISSION, CANCELLED, DISCHARGED, EMERGENCY, change
from fhir_gateway.settings import Settings

CHICAGO = ZoneInfo("America/Chicago")
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
TASK_CODE = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}


def encounter(klass: str, status: str) -> dict:
    return {
        "resourceType": "Encounter",
        "id": "e",
        "class": {"system": ACT, "code": klass},
        "status": status,
    }


@pytest.mark.parametrize(
    ("before", "after", "event"),
    [
        (None, encounter("IMP", "in-progress"), ADMISSION),  # A01
        (encounter("AMB", "arrived"), encounter("IMP", "in-progress"), ADMISSION),  # A06
        (encounter("EMER", "arrived"), encounter("IMP", "in-progress"), ADMISSION),  # ED → admitted
        (None, encounter("EMER", "arrived"), EMERGENCY),  # A04 PV1-2 E
        (None, encounter("AMB", "arrived"), None),  # A04 PV1-2 O: a follow-up
        (encounter("IMP", "in-progress"), encounter("IMP", "in-progress"), None),  # A08 / re-send
        (encounter("IMP", "in-progress"), encounter("IMP", "cancelled"), CANCELLED),  # A11
        (encounter("IMP", "in-progress"), None, CANCELLED),  # deleted
        (encounter("IMP", "cancelled"), encounter("IMP", "cancelled"), None),
        (encounter("IMP", "in-progress"), encounter("IMP", "finished"), DISCHARGED),
        (None, encounter("IMP", "finished"), DISCHARGED),  # an A03 without an A01
    ],
)
def test_encounter_changes(before: dict | None, after: dict | None, event: str | None) -> None:
    assert change(before, after) == event


def test_days_count_in_the_facility_zone_from_the_discharge_day() -> None:
    discharged = parse("2025-03-10T23:30:00-05:00", CHICAGO)  # already 11 March in UTC
    assert discharged is not None
    assert (
        day_number(discharged, datetime(2025, 3, 11, 4, 59, tzinfo=UTC), CHICAGO) == 0
    )  # still 10 March locally
    assert day_number(discharged, datetime(2025, 3, 11, 5, 0, tzinfo=UTC), CHICAGO) == 1
    assert (
        day_number(discharged, parse("2025-04-09T23:59:00", CHICAGO), CHICAGO) == 30
    )  # no offset: local


def test_day_counting_across_the_dst_change() -> None:
    discharged = parse("2025-03-08T12:00:00-06:00", CHICAGO)  # CST; CDT begins on 9 March
    assert day_number(discharged, parse("2025-03-15T23:59:00-05:00", CHICAGO), CHICAGO) == 7
    assert day_number(discharged, parse("2025-03-16T00:00:30-05:00", CHICAGO), CHICAGO) == 8


def test_a_date_deadline_ends_with_its_local_day() -> None:
    end = end_of_day("2025-03-17", CHICAGO)
    assert end is not None and end.isoformat().startswith("2025-03-17T23:59:59.999999-05:00")


SETTINGS = Settings(monitor_ack_hours=48, monitor_escalate_hours=72)
REQUESTED = datetime(2025, 3, 10, 19, 0, tzinfo=UTC)


def task(status: str, deadline: str | None = "2025-03-17T23:59:59-05:00") -> dict:
    doc = {
        "resourceType": "Task",
        "id": "t",
        "status": status,
        "intent": "order",
        "code": TASK_CODE,
    }
    if deadline:
        doc["restriction"] = {"period": {"end": deadline}}
    return doc


def test_unacknowledged_after_the_configured_hours_and_escalated_after_the_second() -> None:
    assert (
        conditions(task("requested"), REQUESTED, REQUESTED + timedelta(hours=48), SETTINGS, CHICAGO)
        == {}
    )
    held = conditions(
        task("requested"), REQUESTED, REQUESTED + timedelta(hours=48, seconds=1), SETTINGS, CHICAGO
    )
    assert list(held) == ["unacknowledged"] and not held["unacknowledged"].escalated
    later = conditions(
        task("requested"), REQUESTED, REQUESTED + timedelta(hours=120, seconds=1), SETTINGS, CHICAGO
    )
    assert later["unacknowledged"].escalated


def test_an_accepted_referral_is_overdue_only_after_its_deadline() -> None:
    deadline = datetime(2025, 3, 18, 4, 59, 59, tzinfo=UTC)
    assert conditions(task("accepted"), REQUESTED, deadline, SETTINGS, CHICAGO) == {}
    held = conditions(
        task("accepted"), REQUESTED, deadline + timedelta(seconds=1), SETTINGS, CHICAGO
    )
    assert list(held) == ["past-deadline"] and held["past-deadline"].since == deadline


@pytest.mark.parametrize("status", ["draft", "completed", "cancelled", "failed", "rejected"])
def test_drafts_and_finished_referrals_are_never_overdue(status: str) -> None:
    assert (
        conditions(task(status), REQUESTED, REQUESTED + timedelta(days=60), SETTINGS, CHICAGO) == {}
    )


def test_a_task_that_is_no_referral_is_not_watched() -> None:
    doc = {**task("requested"), "code": {"text": "call back"}}
    assert conditions(doc, REQUESTED, REQUESTED + timedelta(days=60), SETTINGS, CHICAGO) == {}


def test_a_referral_sent_after_its_deadline_escalates_from_when_it_was_sent() -> None:
    sent = datetime(
        2025, 3, 25, 15, 0, tzinfo=UTC
    )  # a week after the deadline (plan approved late)
    held = conditions(task("requested"), sent, sent + timedelta(seconds=1), SETTINGS, CHICAGO)
    assert held["past-deadline"].since == sent and not held["past-deadline"].escalated
    later = conditions(
        task("requested"), sent, sent + timedelta(hours=72, seconds=1), SETTINGS, CHICAGO
    )
    assert later["past-deadline"].escalated
