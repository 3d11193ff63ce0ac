"""The patient's care plans on the patient page: each plan's state, goals and referrals, each
referral with its partner, its state in a case manager's words, why it waits, its deadline, and a
link to its own page (``/web/referrals/{task_id}``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_gateway.fhir.references import Reference
from fhir_gateway.web._display import plan_state, task_state
from fhir_gateway.web._patient_reader import PatientReader, codings, concept_text
from fhir_gateway.web._views import is_overdue

__all__ = ["PatientPlan", "GoalView", "ReferralRow", "plans"]

_GOAL_STATES = {
    "proposed": "Proposed",
    "planned": "Planned",
    "accepted": "Agreed",
    "active": "Working on it",
    "on-hold": "Paused",
    "completed": "Reached",
    "cancelled": "Dropped",
    "entered-in-error": "Entered in error",
    "rejected": "Declined",
}
_WAITING = {"awaiting-consent": "Waiting for the patient's consent to share (42 CFR Part 2)"}


@dataclass(frozen=True, slots=True)
class GoalView:
    text: str
    state: str
    due: str


@dataclass(frozen=True, slots=True)
class ReferralRow:
    task_id: str
    service: str
    partner: str
    state: str
    why: str
    deadline: str
    deadline_iso: str
    overdue: bool


@dataclass(slots=True)
class PatientPlan:
    plan_id: str
    title: str
    state: str
    period: str
    draft: bool
    goals: list[GoalView] = field(default_factory=list)
    referrals: list[ReferralRow] = field(default_factory=list)


def plans(reader: PatientReader) -> list[PatientPlan]:
    found = reader.of_patient("CarePlan", "subject")
    tasks = reader.of_patient("Task")
    reader.names.prefetch((t.get("focus") or {}).get("reference") for t in tasks)
    reader.names.prefetch((t.get("owner") or {}).get("reference") for t in tasks)
    by_request: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        by_request.setdefault((task.get("focus") or {}).get("reference") or "", []).append(task)
    views = [_plan(reader, p, by_request) for p in found]
    order = {"active": 0, "draft": 1, "on-hold": 2}
    return sorted(views, key=lambda v: (order.get(_status(found, v.plan_id), 3), v.title))


def _status(found: list[dict[str, Any]], plan_id: str) -> str:
    return next((str(p.get("status")) for p in found if p.get("id") == plan_id), "")


def _plan(
    reader: PatientReader, plan: dict[str, Any], by_request: dict[str, list[dict[str, Any]]]
) -> PatientPlan:
    period = plan.get("period") or {}
    goal_refs = [(g or {}).get("reference") for g in plan.get("goal") or []]
    reader.names.prefetch(goal_refs)
    goals = [g for g in map(reader.names.resource, goal_refs) if g]
    tasks: list[dict[str, Any]] = []
    for activity in plan.get("activity") or []:
        ref = ((activity or {}).get("reference") or {}).get("reference") or ""
        if Reference.id_of(ref, "Task"):
            tasks += [t for t in [reader.names.resource(ref)] if t]
        tasks += by_request.get(ref, [])
    rows = [_referral(reader, t) for t in {str(t.get("id")): t for t in tasks}.values()]
    return PatientPlan(
        plan_id=str(plan.get("id")),
        title=str(plan.get("title") or "Care plan"),
        state=plan_state(plan.get("status")),
        period=f"since {reader.clock.day(period['start'])}" if period.get("start") else "",
        draft=plan.get("status") == "draft",
        goals=[_goal(reader, g) for g in goals],
        referrals=sorted(rows, key=lambda r: (r.deadline_iso or "9999", r.service)),
    )


def _goal(reader: PatientReader, goal: dict[str, Any]) -> GoalView:
    due = next((t.get("dueDate") for t in goal.get("target") or [] if t.get("dueDate")), None)
    state = _GOAL_STATES.get(str(goal.get("lifecycleStatus")), "")
    achieved = concept_text(goal.get("achievementStatus")).replace("-", " ")
    return GoalView(
        text=concept_text(goal.get("description"), "(goal not described)"),
        state=f"{state} ({achieved.lower()})" if achieved else state,
        due=f"by {reader.clock.day(due)}" if due else "",
    )


def _referral(reader: PatientReader, task: dict[str, Any]) -> ReferralRow:
    request = reader.names.resource(task.get("focus")) or {}
    end = ((task.get("restriction") or {}).get("period") or {}).get("end")
    business = [c.get("code") for c in codings(task.get("businessStatus"))]
    why = next((_WAITING[c] for c in business if c in _WAITING), "")
    why = why or concept_text(task.get("statusReason")) or concept_text(task.get("businessStatus"))
    owner = task.get("owner")
    return ReferralRow(
        task_id=str(task.get("id")),
        service=concept_text(request.get("code"), "(service not named)"),
        partner=reader.who(owner) if owner else "No partner yet",
        state=task_state(task.get("status")),
        why=why,
        deadline=reader.clock.when(end) if end else "no deadline",
        deadline_iso=reader.clock.iso(end),
        overdue=is_overdue(task),
    )
