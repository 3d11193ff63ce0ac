"""The partner inbox as use cases: what a partner sees, and the four things it does with a
referral. Every read and every change goes through ``services.resources`` with the user's Caller,
so the row policy (minimum Patient, Part 2 labels) and the Task state machine and owner rights of
the workflow apply exactly as on the API; nothing here decides who may do what.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.context import Caller
from fhir_gateway.errors import InvalidRequest
from fhir_gateway.services import resources
from fhir_gateway.web._reasons import REJECT_REASONS, reject_reason
from fhir_gateway.web._views import Referral, referral_view, visible_ids

__all__ = ["Inbox", "inbox", "accept", "reject", "start", "complete", "OPEN_STATUSES"]

OPEN_STATUSES = ("requested", "accepted", "in-progress", "on-hold")
CLOSED_STATUSES = ("completed", "rejected", "failed", "cancelled")
OUTCOME_TYPE = {"text": "Outcome note"}


@dataclass(frozen=True, slots=True)
class Inbox:
    new: list[Referral]  # requested: waiting for this partner (owned, or open to claim)
    active: list[Referral]  # accepted, in progress, on hold
    closed: list[Referral]


def inbox(session: Session, caller: Caller) -> Inbox:
    open_ = _referrals(session, caller, OPEN_STATUSES)
    closed = _referrals(session, caller, CLOSED_STATUSES)
    return Inbox(
        new=[r for r in open_ if r.status == "requested"],
        active=[r for r in open_ if r.status != "requested"],
        closed=closed[:20],
    )


def _referrals(session: Session, caller: Caller, statuses: tuple[str, ...]) -> list[Referral]:
    ids = visible_ids(session, caller, "Task", [("status", ",".join(statuses))])
    views = [referral_view(session, caller, task_id) for task_id in ids]
    return sorted(
        (v for v in views if v is not None),
        key=lambda r: (not r.overdue, r.deadline or "9999", r.task_id),
    )


# -- actions: each one change of the Task, as the user ---------------------------------------------


def accept(session: Session, caller: Caller, task_id: str, version: int) -> None:
    """Accept an owned referral, or claim an unassigned one (owner and status in one change)."""
    task = _current(session, caller, task_id)
    if not task.get("owner") and caller.organization:
        task["owner"] = {"reference": caller.organization}
    _change(session, caller, task, version, status="accepted")


def reject(
    session: Session, caller: Caller, task_id: str, version: int, reason: str, note: str
) -> None:
    if reason not in REJECT_REASONS:
        raise InvalidRequest("Choose a reason for rejecting the referral.")
    _change(
        session,
        caller,
        _current(session, caller, task_id),
        version,
        status="rejected",
        statusReason=reject_reason(reason, note.strip()),
    )


def start(session: Session, caller: Caller, task_id: str, version: int) -> None:
    _change(session, caller, _current(session, caller, task_id), version, status="in-progress")


def complete(session: Session, caller: Caller, task_id: str, version: int, outcome: str) -> None:
    outcome = outcome.strip()
    if not outcome:
        raise InvalidRequest("Write a short outcome note before completing the referral.")
    task = _current(session, caller, task_id)
    output = [*(task.get("output") or []), {"type": OUTCOME_TYPE, "valueString": outcome}]
    _change(session, caller, task, version, status="completed", output=output)


def _current(session: Session, caller: Caller, task_id: str) -> dict[str, Any]:
    return dict(resources.read(session, "Task", task_id, caller).content)


def _change(
    session: Session, caller: Caller, task: dict[str, Any], version: int, **changes: Any
) -> None:
    # If-Match with the version the page showed: a change made meanwhile (another user, the API,
    # a competing claim) makes this one fail with 412 instead of overwriting it.
    resources.update(session, "Task", task["id"], {**task, **changes}, caller, if_match=version)
