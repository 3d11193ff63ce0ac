"""A CarePlan's progress, derived from the resources its activities reference: how many of its
ServiceRequests are completed, active, on hold or revoked; the outcomes partners recorded (Task
outputs, Procedures and Observations based on the request) as ``activity.outcomeReference``; and
the plan ``completed`` once every ServiceRequest is completed or revoked (at least one completed:
a plan whose every request was revoked was withdrawn, not achieved)."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.workflow._referrals import read, save, search, tasks_for

__all__ = ["PROGRESS_EXT", "derive", "refresh", "refresh_plans_of", "plans_of_request"]

PROGRESS_EXT = "http://fhir-gateway.org/fhir/StructureDefinition/careplan-progress"
_DONE = frozenset({"completed", "revoked", "entered-in-error"})
_COUNTED = ("completed", "active", "on-hold", "revoked", "draft")


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


def plans_of_request(session: Session, request_ref: str) -> list[dict[str, Any]]:
    return search(session, "CarePlan", [("activity-reference", request_ref)])


def refresh_plans_of(session: Session, request_ref: str) -> None:
    for plan in plans_of_request(session, request_ref):
        refresh(session, plan)
