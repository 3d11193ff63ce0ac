"""A completed safety plan completes the patient's open safety-plan review Tasks.

A review Task is found by its code, not by who made it: the Task's ``code``, the ``code`` of the
ServiceRequest it fulfils (``focus``), or the ActivityDefinition it instantiates names the
safety-plan review (``referral-service#safety-crisis-plan`` of the discharge templates, or a
``safety-plan-review`` code). It is completed by the gateway (the consequence of the plan being
written, as a completed referral completes its request), through the referral state machine's
legal steps, with the plan as its output. A ``draft`` Task (held for plan review or for consent)
is left as it is while held: releasing it is the reviewer's decision; once released, it is
completed at once if the plan was made after the Task was asked for (``done_before``), so a plan
written while the review waited for approval counts. A review asked for after the latest plan
(a new positive screening) stays open: the plan is to be reviewed again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.context import SYSTEM
from fhir_gateway.services import resources as svc
from fhir_gateway.services.lookup import read, search

__all__ = ["REVIEW_CODES", "OPEN", "is_review", "complete_reviews", "complete", "done_before"]

_SERVICE = "http://fhir-gateway.org/fhir/CodeSystem/referral-service"
_SAFETY = "http://fhir-gateway.org/fhir/CodeSystem/safety-plan"
REVIEW_CODES = frozenset(
    {
        (_SERVICE, "safety-crisis-plan"),
        (_SERVICE, "safety-plan-review"),
        (_SAFETY, "safety-plan-review"),
    }
)
_ACTIVITIES = (  # the discharge template's, and the screening rules'
    "ActivityDefinition/safety-crisis-plan",
    "ActivityDefinition/screening-safety-plan-review",
)
# the legal steps from each open state to completed (workflow's state machine)
OPEN = frozenset({"requested", "accepted", "in-progress", "on-hold"})
_STEPS = {
    "requested": ("accepted", "completed"),
    "accepted": ("completed",),
    "in-progress": ("completed",),
    "on-hold": ("completed",),
}


def _codes(concept: Any) -> set[tuple[str, str]]:
    codings = (concept or {}).get("coding") or [] if isinstance(concept, dict) else []
    return {(str(c.get("system")), str(c.get("code"))) for c in codings if isinstance(c, dict)}


def is_review(session: Session, task: dict[str, Any]) -> bool:
    """Is this Task a safety-plan review (by its code, its request's code, or its definition)?"""
    if _codes(task.get("code")) & REVIEW_CODES:
        return True
    canonicals = [str(c).split("|", 1)[0] for c in task.get("instantiatesCanonical") or []]
    if any(c.endswith(_ACTIVITIES) for c in canonicals):
        return True
    focus = (task.get("focus") or {}).get("reference")
    request = read(session, focus) if str(focus or "").startswith("ServiceRequest/") else None
    return bool(request and _codes(request.get("code")) & REVIEW_CODES)


def complete_reviews(session: Session, patient: str, plan: str, response_id: str) -> list[str]:
    """Complete the patient's open review Tasks; returns the Tasks completed (``Task/ID``)."""
    done = []
    tasks = search(session, "Task", [("patient", patient), ("status", ",".join(_STEPS))])
    for task in tasks:
        if is_review(session, task):
            complete(session, task, plan, response_id)
            done.append(f"Task/{task['id']}")
    return done


def done_before(plan: dict[str, Any], task: dict[str, Any]) -> bool:
    """Was the plan (its response's ``authored``) made at or after the Task was asked for?"""
    made = _instant((plan.get("period") or {}).get("start"))
    asked = _instant(task.get("authoredOn"))
    return made is not None and asked is not None and made >= asked


def _instant(value: Any) -> datetime | None:
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def complete(session: Session, task: dict[str, Any], plan: str, response_id: str) -> None:
    current = task
    for status in _STEPS[str(task.get("status"))]:
        current = {**current, "status": status}
        if status == "completed":
            current["businessStatus"] = {"text": "Safety plan completed with the patient"}
            current["output"] = [*(current.get("output") or []), *_outputs(plan, response_id)]
        stored = svc.update(session, "Task", task["id"], current, SYSTEM).stored
        current = stored.content if stored is not None else current


def _outputs(plan: str, response_id: str) -> list[dict[str, Any]]:
    made = [{"type": {"text": "Safety plan"}, "valueReference": {"reference": plan}}]
    if response_id:
        response = f"QuestionnaireResponse/{response_id}"
        made.append(
            {"type": {"text": "Safety-plan response"}, "valueReference": {"reference": response}}
        )
    return made
