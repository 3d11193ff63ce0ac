"""A CarePlan's progress, derived from the resources its activities reference: how many of its
ServiceRequests are completed, active, on hold or revoked; the outcomes partners recorded (Task
outputs, Procedures and Observations based on the request) as ``activity.outcomeReference``; and
the plan ``completed`` once every ServiceRequest is completed or revoked (at least one completed:
a plan whose every request was revoked was withdrawn, not achieved).

A change marks the plans of its ServiceRequest for a refresh (``mark_plans_of``); each marked plan
is refreshed once, when the transaction's writes are done (``flush_plan_progress``: the intake at
the end of a message, every other writer just before its commit), so a readmission that revokes N
referrals of a plan computes and stores its progress once, not N times. Nothing reads a plan's
progress inside the transaction that changed it."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.context import SYSTEM
from fhir_gateway.store import repository as repo
from fhir_gateway.store.search import match_ids
from fhir_gateway.workflow._referrals import read, save, search, tasks_for

__all__ = [
    "PROGRESS_EXT",
    "derive",
    "refresh",
    "mark_plans_of",
    "mark_plans_of_many",
    "flush_plan_progress",
    "forget_plan_progress",
]

PROGRESS_EXT = "http://fhir-gateway.org/fhir/StructureDefinition/careplan-progress"
_DONE = frozenset({"completed", "revoked", "entered-in-error"})
_COUNTED = ("completed", "active", "on-hold", "revoked", "draft")
_MARKED = "workflow.progress_marked"  # session.info: the ServiceRequests whose plans are stale


def _request_refs(plan: dict[str, Any]) -> list[str]:
    refs = ((a.get("reference") or {}).get("reference", "") for a in plan.get("activity", []))
    return [r for r in refs if r.startswith("ServiceRequest/")]


def derive(
    plan: dict[str, Any], statuses: dict[str, str], outcomes: dict[str, list[str]], today: date
) -> dict[str, Any]:
    """The plan with its progress extension, activity outcomes and (maybe) status brought up to date. Pure."""
    refs = _request_refs(plan)
    counts = Counter(statuses.get(r, "unknown") for r in refs)
    doc = dict(plan)
    parts = [{"url": "total", "valueInteger": len(refs)}]
    parts += [{"url": s, "valueInteger": counts[s]} for s in _COUNTED if counts[s]]
    doc["extension"] = [e for e in plan.get("extension", []) if e.get("url") != PROGRESS_EXT]
    doc["extension"].append({"url": PROGRESS_EXT, "extension": parts})
    doc["activity"] = [_with_outcomes(a, outcomes) for a in plan.get("activity", [])]
    finished = refs and all(statuses.get(r) in _DONE for r in refs) and counts["completed"] > 0
    if finished and plan.get("status") == "active":
        doc["status"] = "completed"
        doc["period"] = {**plan.get("period", {}), "end": today.isoformat()}
    return doc


def _with_outcomes(activity: dict[str, Any], outcomes: dict[str, list[str]]) -> dict[str, Any]:
    found = outcomes.get((activity.get("reference") or {}).get("reference", ""), [])
    known = [o.get("reference") for o in activity.get("outcomeReference", [])]
    merged = list(dict.fromkeys([*known, *found]))
    return (
        {**activity, "outcomeReference": [{"reference": r} for r in merged]} if merged else activity
    )


def _outcomes(session: Session, request_ref: str) -> list[str]:
    out = []
    for task in tasks_for(session, request_ref):
        if task.get("status") == "completed":
            out += [
                o["valueReference"]["reference"]
                for o in task.get("output", [])
                if (o.get("valueReference") or {}).get("reference")
            ]
    for res_type in ("Procedure", "Observation"):
        out += [
            f"{res_type}/{d['id']}" for d in search(session, res_type, [("based-on", request_ref)])
        ]
    return out


def refresh(session: Session, plan: dict[str, Any]) -> None:
    if plan.get("status") != "active":
        return
    refs = _request_refs(plan)
    statuses = {r: (read(session, r) or {}).get("status", "unknown") for r in refs}
    outcomes = {r: _outcomes(session, r) for r in refs}
    updated = derive(plan, statuses, outcomes, clock.now().date())
    if updated != plan:
        save(session, updated)


def mark_plans_of(session: Session, request_ref: str) -> None:
    """The plans that carry ``request_ref`` now are due a refresh before this transaction
    commits (a plan written later in it, such as the discharge's own, is not)."""
    found = match_ids(session, "CarePlan", [("activity-reference", request_ref)], caller=SYSTEM)
    session.info.setdefault(_MARKED, {}).update(dict.fromkeys(found))  # ordered, once each


def mark_plans_of_many(session: Session, request_refs: list[str]) -> None:
    """``mark_plans_of`` for several requests (a plan's), one search per 100 of them."""
    unique = list(dict.fromkeys(request_refs))
    for start in range(0, len(unique), 100):  # references ORed in one search parameter
        chunk = ",".join(unique[start : start + 100])
        found = match_ids(session, "CarePlan", [("activity-reference", chunk)], caller=SYSTEM)
        session.info.setdefault(_MARKED, {}).update(dict.fromkeys(found))


def flush_plan_progress(session: Session) -> None:
    """Refresh each marked plan once (a refresh that completes a plan may mark more: loop)."""
    while marked := session.info.pop(_MARKED, None):
        for plan in repo.read_many(session, "CarePlan", list(marked)):
            if not plan.deleted:
                refresh(session, plan.content)


def forget_plan_progress(session: Session, *_: object) -> None:
    session.info.pop(_MARKED, None)
