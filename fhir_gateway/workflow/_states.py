"""The referral Task state machine (FHIR R4 Task, as the Gravity SDOH Clinical Care IG uses it).
Pure: statuses in, decisions out.

    (new)        → draft, requested
    draft        → requested, cancelled
    requested    → accepted, rejected, cancelled
    accepted     → in-progress, on-hold, completed, failed, cancelled
    in-progress  → on-hold, completed, failed, cancelled
    on-hold      → in-progress, completed, failed, cancelled
    any          → entered-in-error

The requester (the gateway, a case manager) sets draft, requested and entered-in-error; the owner
(the partner organisation) sets accepted, rejected, in-progress, on-hold, completed and failed;
either side may cancel.
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "Side",
    "TRANSITIONS",
    "TERMINAL",
    "OPEN",
    "REASON_EXPECTED",
    "OWNER_FIELDS",
    "allowed_next",
    "is_legal",
    "who_sets",
]


class Side(Enum):
    REQUESTER = "requester"
    OWNER = "owner"


TRANSITIONS: dict[str | None, frozenset[str]] = {
    None: frozenset({"draft", "requested"}),
    "draft": frozenset({"requested", "cancelled"}),
    "requested": frozenset({"accepted", "rejected", "cancelled"}),
    "accepted": frozenset({"in-progress", "on-hold", "completed", "failed", "cancelled"}),
    "in-progress": frozenset({"on-hold", "completed", "failed", "cancelled"}),
    "on-hold": frozenset({"in-progress", "completed", "failed", "cancelled"}),
}
_ANY = frozenset({"entered-in-error"})
TERMINAL = frozenset({"completed", "failed", "rejected", "cancelled", "entered-in-error"})
OPEN = frozenset({"draft", "requested", "accepted", "in-progress", "on-hold"})
REASON_EXPECTED = frozenset({"rejected", "cancelled", "on-hold", "failed"})  # the IG: SHOULD
OWNER_FIELDS = frozenset({"status", "statusReason", "businessStatus", "output"})

_SETTERS: dict[str, frozenset[Side]] = {
    **{s: frozenset({Side.REQUESTER}) for s in ("draft", "requested", "entered-in-error")},
    **{
        s: frozenset({Side.OWNER})
        for s in ("accepted", "rejected", "in-progress", "on-hold", "completed", "failed")
    },
    "cancelled": frozenset({Side.REQUESTER, Side.OWNER}),
}


def allowed_next(status: str | None) -> frozenset[str]:
    """The statuses a Task in ``status`` may move to (None: a new Task)."""
    if status == "entered-in-error":
        return frozenset()
    if status is None:
        return TRANSITIONS[None]
    return TRANSITIONS.get(status, frozenset()) | _ANY


def is_legal(before: str | None, after: str | None) -> bool:
    return after in allowed_next(before)


def who_sets(status: str) -> frozenset[Side]:
    return _SETTERS.get(status, frozenset())
