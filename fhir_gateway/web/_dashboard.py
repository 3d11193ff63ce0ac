"""The case-manager dashboard and patient page as read models.

Plans, goals, referrals and alerts are read with the user's Caller (``_views``). Follow-up after
hospitalisation comes from the monitors (``monitors.fuh_outcomes``) and a referral's timeline from
the workflow's history (``workflow.time_in_states``): both read as the gateway, which is right only
because these pages are for the care-coordination team, who see every row anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import monitors, workflow
from fhir_gateway.context import Caller
from fhir_gateway.fhir.references import Reference
from fhir_gateway.settings import Settings
from fhir_gateway.web._views import (
    OVERDUE_TAG,
    Referral,
    patient_name,
    ref_id,
    referral_view,
    served,
    today,
    visible_ids,
)

__all__ = ["PlanView", "Dashboard", "FollowUp", "TimelineEntry", "dashboard", "patient_page"]

FUH_LOOKBACK_DAYS = 60
_ALERT_CODES = ("readmission", "crisis")
_WORK_ITEM_CODES = monitors.WORK_ITEMS  # unassigned, late, …, unable-to-contact


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
class FollowUp:
    patient_id: str
    patient: str
    discharged: str
    seven: str  # "met" | "not yet" | "missed" | "excluded: …"
    thirty: str


@dataclass(slots=True)
class Dashboard:
    plans: list[PlanView]
    overdue: list[Referral]
    rejected: list[Referral]
    alerts: list[dict[str, Any]]
    follow_ups: list[FollowUp]
    work_items: list[dict[str, Any]] = field(default_factory=list)  # unassigned, late, … (monitors)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: str
    what: str
    detail: str


def dashboard(session: Session, caller: Caller, settings: Settings) -> Dashboard:
    plans = _plans(session, caller, [("status", "active,on-hold")])
    overdue_ids = visible_ids(session, caller, "Task", [("_tag", "|".join(OVERDUE_TAG))])
    in_plans = [r for p in plans for r in p.referrals if r.overdue]
    overdue = {r.task_id: r for r in in_plans}
    for task_id in overdue_ids:
        if (
            task_id not in overdue
            and (view := referral_view(session, caller, task_id))
            and view.overdue
        ):
            overdue[task_id] = view
    rejected = _views(
        session, caller, visible_ids(session, caller, "Task", [("status", "rejected")])
    )
    return Dashboard(
        plans,
        sorted(overdue.values(), key=lambda r: r.deadline or ""),
        rejected,
        _alerts(session, caller),
        _follow_ups(session, caller, settings),
        _alerts(session, caller, _WORK_ITEM_CODES),
    )


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


def _alerts(
    session: Session, caller: Caller, kinds: tuple[str, ...] = _ALERT_CODES
) -> list[dict[str, Any]]:
    codes = ",".join(f"{monitors.MONITOR_FLAGS}|{c}" for c in kinds)
    flags = [
        served(session, caller, f"Flag/{i}")
        for i in visible_ids(session, caller, "Flag", [("_tag", codes)])
    ]
    active = [f for f in flags if f and f.get("status") == "active"]
    for flag in active:
        flag["_patient"] = patient_name(served(session, caller, ref_id(flag, "subject")))
        flag["_kind"] = next(
            (
                t["code"]
                for t in (flag.get("meta") or {}).get("tag") or []
                if t.get("system") == monitors.MONITOR_FLAGS and t.get("code") in kinds
            ),
            "alert",
        )
    return sorted(
        active, key=lambda f: (f["_kind"] != "crisis", (f.get("period") or {}).get("start", ""))
    )


def _follow_ups(session: Session, caller: Caller, settings: Settings) -> list[FollowUp]:
    end = today()
    outcomes = monitors.fuh_outcomes(
        session, settings, end - timedelta(days=FUH_LOOKBACK_DAYS), end
    )
    rows = []
    for o in outcomes:
        patient = o.discharge.patient
        rows.append(
            FollowUp(
                Reference.id_of(patient, "Patient") or "",
                patient_name(served(session, caller, patient)),
                o.local_date.isoformat(),
                _fuh_state(o, 7, end),
                _fuh_state(o, 30, end),
            )
        )
    return sorted(rows, key=lambda r: r.discharged, reverse=True)


def _fuh_state(outcome: Any, days: int, now: Any) -> str:
    if outcome.exclusion:
        return f"excluded: {outcome.exclusion}"
    hit = outcome.within(days)
    if hit is not None:
        return f"met (day {hit.day})"
    return "missed" if (now - outcome.local_date).days > days else "not yet"


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
