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
    assert shown.relative("2027-02-25T18:00:00Z") == "in 3 months"
    assert shown.relative("2024-11-25T18:00:00Z") == "2 years ago"
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


def test_a_gateway_serving_several_zones_shows_each_deadline_at_its_facilitys_offset():
    # The demo's Springfield and Bengaluru on one gateway (default zone UTC): a deadline written at
    # 23:59 in Chicago or in Kolkata reads 11:59 pm, not the UTC clock; a UTC instant stays in zone.
    shown = Display(ZoneInfo("UTC"), NOW, own_offsets=True)
    assert shown.when("2026-11-27T23:59:59-06:00") == "Fri 27 Nov at 11:59 pm"
    assert shown.when("2026-11-27T23:59:59+05:30") == "Fri 27 Nov at 11:59 pm"
    assert shown.when("2026-11-25T20:30:00Z") == "today at 8:30 pm"
    assert shown.past("2026-11-25T11:59:00-06:00") and not shown.past("2026-11-25T12:01:00-06:00")
    assert (
        Display(ZoneInfo("UTC"), NOW).when("2026-11-27T23:59:59-06:00") == "Sat 28 Nov at 5:59 am"
    )


def test_several_zones_are_told_from_the_settings():
    from fhir_gateway.settings import Settings
    from fhir_gateway.web._display import serves_several_zones

    assert serves_several_zones(Settings())  # the two demo hospitals and UTC
    one = Settings(
        sender_zones={"STMARYS": "America/Chicago"}, default_sender_zone="America/Chicago"
    )
    assert not serves_several_zones(one)
