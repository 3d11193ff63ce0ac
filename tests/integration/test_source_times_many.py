"""The replay guard reads the source times of all of a message's update targets at once: the
same times one read per target gives, none for a target never written by a message."""

from __future__ import annotations

from datetime import UTC, datetime

from fhir_gateway.store import source_times


def test_the_times_of_many_targets_are_each_ones_own(session_factory):
    jan, feb = datetime(2024, 1, 5, tzinfo=UTC), datetime(2024, 2, 5, tzinfo=UTC)
    with session_factory() as session:
        source_times.advance_many(session, [("Patient", "a"), ("Encounter", "a")], jan, None)
        source_times.advance_many(session, [("Patient", "b")], feb, None)
        targets = [("Patient", "a"), ("Patient", "b"), ("Encounter", "a"), ("Patient", "c")]
        many = source_times.get_many(session, targets)
        assert many == {t: source_times.get(session, *t) for t in targets[:3]}
        assert many[("Patient", "b")] == feb and ("Patient", "c") not in many
        assert source_times.get_many(session, []) == {}


def test_times_only_move_forward_and_a_target_named_twice_is_recorded_once(session_factory):
    jan, feb = datetime(2024, 1, 5, tzinfo=UTC), datetime(2024, 2, 5, tzinfo=UTC)
    with session_factory() as session:
        twice = [("Organization", "o"), ("Patient", "a"), ("Organization", "o")]
        source_times.advance_many(session, twice, feb, 7)  # one upsert: each row once
        source_times.advance_many(session, [("Organization", "o")], jan, 8)  # older: kept
        assert source_times.get(session, "Organization", "o") == feb
        assert source_times.get(session, "Patient", "a") == feb
