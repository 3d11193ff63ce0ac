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
