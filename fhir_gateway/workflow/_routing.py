"""What happens to a referral a partner turned down: it goes to the next eligible partner (a new
Task, partOf the first Task of the referral), or, when none is left, its ServiceRequest is put on
hold for the case manager."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.context import SYSTEM
from fhir_gateway.services import resources as svc
from fhir_gateway.workflow._partners import eligible_organizations
from fhir_gateway.workflow._referrals import read, ref, save, tasks_for

__all__ = ["reroute", "hold_request", "next_partner"]

_NOT_COPIED = frozenset(
    {
        "id",
        "meta",
        "status",
        "statusReason",
        "businessStatus",
        "output",
        "owner",
        "partOf",
        "lastModified",
        "authoredOn",
        "executionPeriod",
        "text",
    }
)


def next_partner(
    session: Session, request: dict[str, Any], request_ref: str
) -> tuple[str, str] | None:
    """The best eligible partner that has not had this referral yet."""
    tried = {ref(t, "owner") for t in tasks_for(session, request_ref)}
    return next(
        ((org, name) for org, name in eligible_organizations(session, request) if org not in tried),
        None,
    )


def reroute(session: Session, task: dict[str, Any]) -> str | None:
    """A new Task to the next partner; returns its reference, or None when no partner is left."""
    request_ref = ref(task, "focus")
    request = read(session, request_ref)
    if request is None or request_ref is None or request.get("status") != "active":
        return None
    partner = next_partner(session, request, request_ref)
    if partner is None:
        return None
    organization, name = partner
    now = clock.to_instant(clock.now())
    root = (task.get("partOf") or [{"reference": f"Task/{task['id']}"}])[0]
    # not meta.tag: the monitors' overdue/escalated tags were the previous partner's, and the new
    # partner's acknowledgement window starts now (its clinical deadline, restriction, is kept)
    meta = {k: v for k, v in (task.get("meta") or {}).items() if k in ("profile", "security")}
    new = {
        **{k: v for k, v in task.items() if k not in _NOT_COPIED},
        "status": "requested",
        "partOf": [root],
        "owner": {"reference": organization, "display": name},
        "authoredOn": now,
        "lastModified": now,
    }
    if meta:
        new["meta"] = meta
    stored = svc.create(session, "Task", new, SYSTEM).stored
    assert stored is not None
    save(session, {**request, "performer": [{"reference": organization, "display": name}]})
    return stored.relative


def hold_request(session: Session, request_ref: str | None, reason: str) -> None:
    """The ServiceRequest on hold, for the case manager to decide."""
    request = read(session, request_ref)
    if request is None or request.get("status") != "active":
        return
    notes = [*request.get("note", []), {"text": reason, "time": clock.to_instant(clock.now())}]
    save(session, {**request, "status": "on-hold", "note": notes})
