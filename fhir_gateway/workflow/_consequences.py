"""What a referral change sets off, in the same transaction, as the requester (the gateway owns the
ServiceRequests and CarePlans):

- every Task transition gets a Provenance;
- a completed Task completes its ServiceRequest;
- a rejected Task goes to the next eligible partner, or (none left) its ServiceRequest goes on hold;
  so does a failed one, and one the partner cancelled: the case manager decides what next;
- a Task the requester sends to (or changes at) a partner with its own FHIR server is pushed there;
- a revoked ServiceRequest cancels its open Tasks; any ServiceRequest change refreshes the progress
  of the plans that reference it (and may complete them), once per plan when the transaction's
  writes are done (``_progress.flush_plan_progress``);
- a revoked CarePlan revokes the ServiceRequests it issued that no other live plan carries on;
- a Procedure or Observation posted for a ServiceRequest becomes an outcome of its plan activity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_gateway.context import SYSTEM
from fhir_gateway.hooks import WriteEvent, Written
from fhir_gateway.store import outbox
from fhir_gateway.store.repository import StoredResource
from fhir_gateway.workflow import _direct, _history, _progress, _routing
from fhir_gateway.workflow._referrals import (
    is_referral,
    read,
    read_all,
    ref,
    save,
    search,
    status_reason,
    tasks_of,
)
from fhir_gateway.workflow._rules import actor_of
from fhir_gateway.workflow._states import OPEN

__all__ = ["on_tasks", "on_service_requests", "on_careplan", "on_outcome"]

NO_PARTNER_LEFT = (
    "No eligible partner is left for this referral; the case manager decides what next"
)
_LIVE_PLAN = "draft,active,on-hold"


def _changed(
    event: WriteEvent, stored: StoredResource | None, field: str
) -> tuple[Any, Any] | None:
    """(before, after) of a field when this write changed it; None when it did not."""
    if stored is None or stored.deleted:
        return None
    old = event.before.content.get(field) if event.before is not None else None
    new = stored.content.get(field)
    return (old, new) if old != new else None


# -- Task -----------------------------------------------------------------------------------------


def on_tasks(written: list[Written]) -> None:
    """Each referral Task's transition, one after the other; the partners' endpoints looked up
    once for the batch (a plan's Tasks mostly go to a few partners)."""
    endpoints: dict[str, str | None] = {}
    pushes: list[dict[str, Any]] = []  # the pushes to partners' servers, queued in one INSERT
    for event, stored in written:
        _on_task(event, stored, _Pushes(endpoints, pushes))
    if pushes:
        outbox.enqueue_many(written[0][0].session, pushes)


@dataclass(frozen=True, slots=True)
class _Pushes:
    """A batch's partner endpoints (looked up once per owner) and the push rows it queues."""

    endpoints: dict[str, str | None]
    rows: list[dict[str, Any]]


def _on_task(event: WriteEvent, stored: StoredResource | None, pushes: _Pushes) -> None:
    if stored is None or stored.deleted or not is_referral(stored.content):
        return
    status = _changed(event, stored, "status")
    owner = _changed(event, stored, "owner")
    if status is None and owner is None:
        return
    previous = event.before.content.get("status") if event.before is not None else None
    _history.record_transition(event.session, event.caller, stored, previous)
    if status is not None:
        _after_transition(event, stored, status[1], pushes)


def _after_transition(
    event: WriteEvent, stored: StoredResource, status: str, pushes: _Pushes
) -> None:
    session, task = event.session, stored.content
    request_ref = ref(task, "focus")
    if status == "completed":
        _complete_request(event, request_ref)
    elif status == "rejected":
        if _routing.reroute(session, task) is None:
            _routing.hold_request(session, request_ref, NO_PARTNER_LEFT)
    elif status == "failed" or (status == "cancelled" and actor_of(event.caller).organization):
        _routing.hold_request(
            session,
            request_ref,
            f"The partner's Task ended {status}; the case manager decides what next",
        )
    if status != "draft" and ref(task, "owner") and not actor_of(event.caller).organization:
        row = _direct.push_row(session, stored, pushes.endpoints)
        if row is not None:  # the requester's changes reach a partner's own server
            pushes.rows.append(outbox.pending_row(**row))


def _complete_request(event: WriteEvent, request_ref: str | None) -> None:
    request = read(event.session, request_ref)
    if request is not None and request.get("status") in ("active", "on-hold"):
        save(event.session, {**request, "status": "completed"})


# -- ServiceRequest -------------------------------------------------------------------------------


def on_service_requests(written: list[Written]) -> None:
    """Revoked requests cancel their open Tasks; the plans of every request whose status changed
    are marked for a refresh, found in one search for the batch."""
    changed: list[tuple[WriteEvent, str, bool]] = []
    for event, stored in written:
        change = _changed(event, stored, "status")
        if change is not None and stored is not None:
            changed.append((event, stored.relative, change[1] == "revoked"))
    if not changed:
        return
    session = written[0][0].session
    revoked = [request_ref for _event, request_ref, is_revoked in changed if is_revoked]
    tasks = tasks_of(session, revoked) if revoked else {}
    for event, request_ref, is_revoked in changed:
        if is_revoked:
            _cancel_open_tasks(event, tasks.get(request_ref, []))
    _progress.mark_plans_of_many(session, [request_ref for _event, request_ref, _r in changed])


def _cancel_open_tasks(event: WriteEvent, tasks: list[dict[str, Any]]) -> None:
    for task in tasks:
        if task.get("status") in OPEN:
            reason = task.get("statusReason") if task.get("status") == "cancelled" else None
            save(
                event.session,
                {
                    **task,
                    "status": "cancelled",
                    "statusReason": reason or status_reason("The referral was revoked"),
                },
                SYSTEM,
            )


# -- CarePlan -------------------------------------------------------------------------------------


def on_careplan(event: WriteEvent, stored: StoredResource | None) -> None:
    change = _changed(event, stored, "status")
    if change is None or stored is None or change[1] != "revoked":
        return
    refs = [
        (a.get("reference") or {}).get("reference", "") for a in stored.content.get("activity", [])
    ]
    refs = list(dict.fromkeys(r for r in refs if r.startswith("ServiceRequest/")))
    requests = read_all(event.session, refs) if refs else {}  # one query
    for request_ref in refs:
        _revoke_if_own(event, stored.relative, request_ref, requests.get(request_ref))


def _revoke_if_own(
    event: WriteEvent, plan_ref: str, request_ref: str, request: dict[str, Any] | None
) -> None:
    if request is None or request.get("status") in ("completed", "revoked", "entered-in-error"):
        return
    if not any(b.get("reference") == plan_ref for b in request.get("basedOn", [])):
        return  # carried over from an earlier plan: not this plan's to revoke
    others = [
        p
        for p in search(
            event.session, "CarePlan", [("activity-reference", request_ref), ("status", _LIVE_PLAN)]
        )
        if f"CarePlan/{p['id']}" != plan_ref
    ]
    if not others:  # a newer plan that carries the referral on keeps it alive
        save(event.session, {**request, "status": "revoked"})


# -- outcomes -------------------------------------------------------------------------------------


def on_outcome(event: WriteEvent, stored: StoredResource | None) -> None:
    if stored is None or stored.deleted or event.before is not None:
        return
    for based in stored.content.get("basedOn", []):
        if (based.get("reference") or "").startswith("ServiceRequest/"):
            _progress.mark_plans_of(event.session, based["reference"])
