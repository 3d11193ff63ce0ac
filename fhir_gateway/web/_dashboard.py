"""The patient page as a read model (the worklist replaced the dashboard: ``_worklist``).

Plans, goals and referrals are read with the user's Caller (``_views``); a referral's timeline
comes from the workflow's history (``workflow.time_in_states``), read as the gateway, which is right
only because this page is for the care-coordination team, who see every row anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import workflow
from fhir_gateway.context import Caller
from fhir_gateway.fhir.references import Reference
from fhir_gateway.web._views import (
    Referral,
    patient_name,
    ref_id,
    referral_view,
    served,
    visible_ids,
)

__all__ = ["PlanView", "TimelineEntry", "patient_page"]


@dataclass(slots=True)
class PlanView:
    plan_id: str
    status: str
    title: str
    patient_id: str
    patient: str
    goals: list[dict[str, Any]] = field(default_factory=list)
    referrals: list[Referral] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: str
    what: str
    detail: str


def _views(session: Session, caller: Caller, ids: list[str]) -> list[Referral]:
    return [v for v in (referral_view(session, caller, i) for i in ids) if v is not None]


def _plans(session: Session, caller: Caller, params: list[tuple[str, str]]) -> list[PlanView]:
    out = []
    for plan_id in visible_ids(session, caller, "CarePlan", params):
        plan = served(session, caller, f"CarePlan/{plan_id}")
        if plan is None:
            continue
        patient_ref = ref_id(plan, "subject") or ""
        view = PlanView(
            plan_id,
            plan.get("status", ""),
            plan.get("title") or "Care plan",
            Reference.id_of(patient_ref) or "",
            patient_name(served(session, caller, patient_ref)),
        )
        view.goals = [
            g
            for g in (
                served(session, caller, (x or {}).get("reference")) for x in plan.get("goal") or []
            )
            if g
        ]
        view.referrals = _plan_referrals(session, caller, plan)
        out.append(view)
    return sorted(out, key=lambda p: (p.patient, p.plan_id))


def _plan_referrals(session: Session, caller: Caller, plan: dict[str, Any]) -> list[Referral]:
    refs = [(a.get("reference") or {}).get("reference") or "" for a in plan.get("activity") or []]
    tasks = {task_id for r in refs if (task_id := Reference.id_of(r, "Task"))}
    for sr in (r for r in refs if r.startswith("ServiceRequest/")):
        tasks.update(visible_ids(session, caller, "Task", [("focus", sr)]))
    return sorted(
        _views(session, caller, sorted(tasks)), key=lambda r: (r.deadline or "9999", r.task_id)
    )


# -- the patient page ------------------------------------------------------------------------------


def patient_page(
    session: Session, caller: Caller, patient_id: str
) -> tuple[dict[str, Any], list[PlanView], list[TimelineEntry]] | None:
    patient = served(session, caller, f"Patient/{patient_id}")
    if patient is None:
        return None
    plans = _plans(session, caller, [("subject", f"Patient/{patient_id}")])
    return patient, plans, _timeline(session, caller, plans)


def _timeline(session: Session, caller: Caller, plans: list[PlanView]) -> list[TimelineEntry]:
    entries = []
    for plan in plans:
        doc = served(session, caller, f"CarePlan/{plan.plan_id}") or {}
        start = (doc.get("period") or {}).get("start") or (doc.get("created")) or ""
        entries.append(TimelineEntry(str(start), "Plan started", plan.title))
        for r in plan.referrals:
            for span in workflow.time_in_states(session, r.task_id):
                entries.append(
                    TimelineEntry(_iso(span.start), f"Referral {span.status}", r.service)
                )
            if r.deadline:
                entries.append(TimelineEntry(str(r.deadline), "Referral deadline", r.service))
    return sorted(entries, key=lambda e: e.at)


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="minutes")
