"""What pages show instead of FHIR: times in the facility's zone in words, states in words."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from fhir_gateway.web._display import Display, human_name, plan_state, resource_name, task_state

CHICAGO = ZoneInfo("America/Chicago")
NOW = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)  # Wed 25 Nov, 12:00 pm in Chicago


def test_a_deadline_reads_in_the_facility_zone_with_words_for_near_days():
    shown = Display(CHICAGO, NOW)
    assert shown.when("2026-11-26T05:59:59+00:00") == "today at 11:59 pm"
    assert shown.when("2026-11-26T15:00:00+00:00") == "tomorrow at 9:00 am"
    assert shown.when("2026-11-25T20:30:00Z") == "today at 2:30 pm"
    assert shown.when("2026-11-28T23:59:59+00:00") == "Sat 28 Nov at 5:59 pm"
    assert shown.when("2025-01-02") == "Thu 2 Jan 2025"
    assert shown.when("2026-11-24") == "yesterday"
    assert shown.when(None) == "no date" and shown.when("not a date") == "no date"


def test_relative_times_say_how_far_from_now():
    shown = Display(CHICAGO, NOW)
    assert shown.relative("2026-11-28T18:00:00Z") == "in 3 days"
    assert shown.relative("2026-11-25T16:00:00Z") == "2 hours ago"
    assert shown.relative("2026-11-25T18:00:30Z") == "just now"
    assert shown.relative("2026-11-25T18:01:00Z") == "in 1 minute"
    assert shown.iso("2026-11-26T05:59:59Z") == "2026-11-25T23:59-06:00"


def test_states_are_words_and_unknown_ones_stay_readable():
    assert task_state("requested") == "Waiting for the partner"
    assert task_state("rejected") == "Declined by the partner"
    assert plan_state("draft") == "Waiting for approval"
    assert task_state("some-new-state") == "Some new state"


def test_names_come_from_the_resource_never_the_reference():
    assert human_name([{"given": ["Ann", "B."], "family": "Smith"}]) == "Ann B. Smith"
    assert resource_name({"resourceType": "Organization", "name": "Harbor Housing"}) == (
        "Harbor Housing"
    )
    assert resource_name({"resourceType": "Patient", "name": [{"text": "Jo Roe"}]}) == "Jo Roe"
    assert resource_name({"resourceType": "Organization"}) is None
