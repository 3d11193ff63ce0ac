"""The referral state machine as DESIGN.md draws it: every pair of statuses, legal or not."""

from __future__ import annotations

import itertools

import pytest

from fhir_gateway.workflow._states import Side, allowed_next, is_legal, who_sets

STATUSES = [
    "draft",
    "requested",
    "accepted",
    "in-progress",
    "on-hold",
    "completed",
    "failed",
    "rejected",
    "cancelled",
    "entered-in-error",
]
LEGAL = {
    "draft": {"requested", "cancelled"},
    "requested": {"accepted", "rejected", "cancelled"},
    "accepted": {"in-progress", "on-hold", "completed", "failed", "cancelled"},
    "in-progress": {"on-hold", "completed", "failed", "cancelled"},
    "on-hold": {"in-progress", "completed", "failed", "cancelled"},
}


@pytest.mark.parametrize(("before", "after"), [p for p in itertools.permutations(STATUSES, 2)])
def test_every_pair_is_legal_exactly_as_designed(before: str, after: str) -> None:
    expected = after in LEGAL.get(before, set()) or (
        after == "entered-in-error" and before != "entered-in-error"
    )
    assert is_legal(before, after) is expected


@pytest.mark.parametrize("status", STATUSES)
def test_a_new_task_starts_as_draft_or_requested(status: str) -> None:
    assert is_legal(None, status) is (status in ("draft", "requested"))


def test_final_states_lead_only_to_entered_in_error() -> None:
    for status in ("completed", "failed", "rejected", "cancelled"):
        assert allowed_next(status) == {"entered-in-error"}
    assert allowed_next("entered-in-error") == frozenset()


def test_rights_follow_the_design() -> None:
    assert {s for s in STATUSES if who_sets(s) == {Side.REQUESTER}} == {
        "draft",
        "requested",
        "entered-in-error",
    }
    assert {s for s in STATUSES if who_sets(s) == {Side.OWNER}} == {
        "accepted",
        "rejected",
        "in-progress",
        "on-hold",
        "completed",
        "failed",
    }
    assert who_sets("cancelled") == {Side.REQUESTER, Side.OWNER}
