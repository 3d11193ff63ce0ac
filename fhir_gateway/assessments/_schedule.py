"""Measurements due after a discharge, as SDC Tasks on the plan (measurement-based care).

The schedule is data: the PlanDefinition ``measurement-based-care`` (``mappings/careplans``), one
action per instrument whose ``definitionCanonical`` names the Questionnaire, and below it one
action per occasion whose ``timingRange`` is the window in days after the discharge (calendar days
in the facility's zone, the discharge day is day 0: ``11..17 d`` is the week around day 14).

Each occasion becomes a Task (SDC *complete-questionnaire*): ``input`` the Questionnaire's
canonical, ``for`` the patient, ``restriction.period`` the window, ``owner`` the plan's case
manager (nobody yet: the case team's), who asks the patient, by phone as in collaborative care,
and records the answers on the patient page or through the API; it is added to
``CarePlan.activity`` like the referrals. A draft plan's Tasks stay ``draft`` until it is approved;
a plan withdrawn (revoked, entered-in-error) cancels the ones still open.

    occasions(plan_definition)                       # pure: what the template asks for
    measurement_tasks(plan, occasions, discharged, zone, owner, now)   # pure: the Tasks
    plan_measurements(session, plan, discharged, zone, drafted)  # the Tasks of a drafted plan
    schedule_plan(session, plan, discharged, zone)   # store them (idempotent: stable ids)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from fhir_gateway import careplans, clock
from fhir_gateway.assessments._mbc_codes import (
    COMPLETE_QUESTIONNAIRE,
    SDC_TEMP,
    bare,
    instrument_of_questionnaire,
)
from fhir_gateway.fhir import care_team
from fhir_gateway.services import lookup
from fhir_gateway.store import repository as repo
from fhir_gateway.store.keyed_ids import keyed_id

__all__ = [
    "SCHEDULE_ID",
    "MAX_OCCASIONS",
    "OPEN",
    "Occasion",
    "occasions",
    "window",
    "measurement_tasks",
    "is_measurement",
    "schedule_plan",
    "plan_measurements",
    "measurement_tasks_of",
    "TASK_IDENTIFIER",
    "questionnaire_of",
    "owner_for",
    "labels_for",
]

# the plan's resources not stored yet, by Type/id (``careplans.DraftedPlan.resources``)
Drafted = dict[str, dict[str, Any]] | None

SCHEDULE_ID = "measurement-based-care"
MAX_OCCASIONS = 48  # a template is data a user edits: bound what one discharge may create
OPEN = ("draft", "requested", "received", "accepted", "in-progress", "on-hold", "ready")
TASK_IDENTIFIER = "http://fhir-gateway.org/fhir/measurement-task"
TREATING_SERVICES = ("psychiatry-follow-up", "therapy-intake")  # whose partner measures
_NAMESPACE = uuid.UUID("6a2b0e4c-3c1d-4f8e-9b7a-1d2e3f4a5b6c")
_END_OF_DAY = time(23, 59, 59)


@dataclass(frozen=True, slots=True)
class Occasion:
    key: str  # the action's id: stable across runs
    questionnaire: str  # canonical as written in the template
    title: str  # "PHQ-9 at day 14"
    low: int  # first day of the window (days after discharge)
    high: int  # last day of the window


def _days(quantity: Any) -> int | None:
    if not isinstance(quantity, dict) or (quantity.get("code") or "d") != "d":
        return None
    value = quantity.get("value")
    return int(value) if isinstance(value, int | float) and 0 <= value <= 3660 else None


def occasions(plan_definition: dict[str, Any] | None) -> list[Occasion]:
    """The occasions of an active schedule template (none when it is retired or absent)."""
    if not plan_definition or plan_definition.get("status") != "active":
        return []
    found: list[Occasion] = []
    for action in plan_definition.get("action") or []:
        canonical = action.get("definitionCanonical") if isinstance(action, dict) else None
        if not canonical:
            continue
        for i, step in enumerate(action.get("action") or []):
            span = (step or {}).get("timingRange") or {}
            low, high = _days(span.get("low")), _days(span.get("high"))
            if low is None or high is None or high < low:
                continue
            key = str(step.get("id") or f"{action.get('id')}-{i}")
            title = str(step.get("title") or f"{action.get('title') or canonical} day {low}-{high}")
            found.append(Occasion(key, canonical, title, low, high))
    return found[:MAX_OCCASIONS]


def window(discharged: datetime, zone: ZoneInfo, occasion: Occasion) -> tuple[datetime, datetime]:
    """From the start of day ``low`` to the end of day ``high`` in the facility's zone."""
    day0: date = discharged.astimezone(zone).date()
    start = datetime.combine(day0 + timedelta(days=occasion.low), time(0, 0), zone)
    end = datetime.combine(day0 + timedelta(days=occasion.high), _END_OF_DAY, zone)
    return start, end


def _task_id(plan_id: str, occasion: Occasion) -> str:
    return keyed_id(_NAMESPACE, f"measurement|{plan_id}|{occasion.key}")


def _code(text: str) -> dict[str, Any]:
    return {"coding": [{"system": SDC_TEMP, "code": COMPLETE_QUESTIONNAIRE}], "text": text}


def measurement_tasks(
    plan: dict[str, Any],
    found: list[Occasion],
    discharged: datetime,
    zone: ZoneInfo,
    owner: dict[str, Any] | None,
    now: datetime,
    labels: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The Tasks of ``found`` for ``plan`` (pure), labelled ``labels`` (``meta.security``)."""
    status = "requested" if plan.get("status") == "active" else "draft"
    tasks = []
    for occasion in found:
        start, end = window(discharged, zone, occasion)
        instrument = instrument_of_questionnaire(occasion.questionnaire)
        name = instrument.name if instrument else "the questionnaire"
        task: dict[str, Any] = {
            "resourceType": "Task",
            "id": _task_id(str(plan["id"]), occasion),
            "identifier": [{"system": TASK_IDENTIFIER, "value": f"{plan['id']}|{occasion.key}"}],
            "basedOn": [{"reference": f"CarePlan/{plan['id']}"}],
            "status": status,
            "intent": "order",
            "priority": "routine",
            "code": _code(f"Complete the {name} with the patient"),
            "description": f"{occasion.title}: ask the patient the {name} "
            f"between day {occasion.low} and day {occasion.high} after the discharge.",
            "for": plan.get("subject"),
            "authoredOn": clock.to_instant(now),
            "lastModified": clock.to_instant(now),
            "restriction": {
                "period": {
                    "start": start.isoformat(timespec="seconds"),
                    "end": end.isoformat(timespec="seconds"),
                }
            },
            "input": [
                {
                    "type": {"coding": [{"system": SDC_TEMP, "code": "questionnaire"}]},
                    "valueCanonical": occasion.questionnaire,
                }
            ],
        }
        if plan.get("encounter"):
            task["encounter"] = plan["encounter"]
        if labels:
            task["meta"] = {"security": labels}
        if owner:
            task["owner"] = owner
        tasks.append(task)
    return tasks


def is_measurement(task: dict[str, Any]) -> bool:
    return any(
        c.get("system") == SDC_TEMP and c.get("code") == COMPLETE_QUESTIONNAIRE
        for c in (task.get("code") or {}).get("coding") or []
        if isinstance(c, dict)
    )


def questionnaire_of(task: dict[str, Any]) -> str:
    for entry in task.get("input") or []:
        if entry.get("valueCanonical"):
            return bare(entry["valueCanonical"])
    return ""


# -- who measures ---------------------------------------------------------------------------------


def _read(session: Session, ref: str, drafted: Drafted) -> dict[str, Any] | None:
    """``ref`` from the plan's resources not stored yet (``drafted``), else from the store."""
    if drafted is not None and ref in drafted:
        return drafted[ref]
    return lookup.read(session, ref)


def _tasks_for(session: Session, request: str, drafted: Drafted) -> list[dict[str, Any]]:
    if drafted is not None and request in drafted:  # a new request: its Tasks are new too
        return [
            d
            for d in drafted.values()
            if d.get("resourceType") == "Task"
            and (d.get("focus") or {}).get("reference") == request
        ]
    return lookup.search(session, "Task", [("focus", request)])


def _treating_referral(
    session: Session, plan: dict[str, Any], drafted: Drafted = None
) -> dict[str, Any] | None:
    """The Task of the plan's psychiatry or therapy referral that has an owner."""
    for activity in plan.get("activity") or []:
        ref = ((activity or {}).get("reference") or {}).get("reference") or ""
        if not ref.startswith("ServiceRequest/"):
            continue
        request = _read(session, ref, drafted) or {}
        codes = {c.get("code") for c in (request.get("code") or {}).get("coding") or []}
        if not codes & set(TREATING_SERVICES):
            continue
        for task in _tasks_for(session, ref, drafted):
            if (task.get("owner") or {}).get("reference"):
                return task
    return None


def _case_manager(
    session: Session, plan: dict[str, Any], drafted: Drafted = None
) -> dict[str, Any] | None:
    """The person the plan's care team assigns as case manager (``fhir.care_team``)."""
    for team_ref in plan.get("careTeam") or []:
        ref = (team_ref or {}).get("reference")
        member = care_team.assigned_case_manager(_read(session, ref, drafted) if ref else None)
        if member:
            return {"reference": member}
    return None


def owner_for(
    session: Session, plan: dict[str, Any], drafted: Drafted = None
) -> dict[str, Any] | None:
    """The plan's case manager, else nobody yet (the worklist shows it as the case team's).

    Not the treating partner: a partner may not record a QuestionnaireResponse (its role), so a
    measurement it owned could be closed but never scored. A case manager may still hand one to a
    partner, whose rights on it are then an owner's (``_measurement``)."""
    return _case_manager(session, plan, drafted)


def labels_for(
    session: Session, plan: dict[str, Any], drafted: Drafted = None
) -> list[dict[str, Any]]:
    """The sensitivity of a measurement: that of the treating referral its owner already holds
    (PSY, MHCA), else the plan's. Not the plan's Part 2 labels when a treating referral exists: a
    PHQ-9 is no substance-use record, and its owner must be able to see it."""
    referral = _treating_referral(session, plan, drafted)
    source = referral if referral is not None else plan
    return list((source.get("meta") or {}).get("security") or [])


# -- storing ----------------------------------------------------------------------------------------


def plan_measurements(
    session: Session,
    plan: dict[str, Any],
    discharged: datetime,
    zone: ZoneInfo,
    drafted: Drafted = None,
) -> list[dict[str, Any]]:
    """The measurement Tasks ``plan`` calls for (one per id), from the stored schedule template;
    ``drafted``: the plan's resources not stored yet (``careplans.DraftedPlan.resources``)."""
    # from the stored templates, as the discharge that called it just loaded them
    template = careplans.template_set(session).by_ref.get(f"PlanDefinition/{SCHEDULE_ID}")
    found = occasions(template)
    if not found:
        return []
    owner, labels = owner_for(session, plan, drafted), labels_for(session, plan, drafted)
    tasks = measurement_tasks(plan, found, discharged, zone, owner, clock.now(), labels)
    unique = {task["id"]: task for task in reversed(tasks)}  # the first of an id, as one by one
    return [task for task in tasks if unique[task["id"]] is task]


def schedule_plan(
    session: Session, plan: dict[str, Any], discharged: datetime, zone: ZoneInfo
) -> list[str]:
    """Store the measurement Tasks of a stored ``plan`` and add them to its activities; returns
    the references of the Tasks created now (none on a second run). A plan the engine drafts
    gets them before it is stored (``plan_measurements``, the ``plan`` rule)."""
    tasks = plan_measurements(session, plan, discharged, zone)
    if not tasks:
        return []
    stored = repo.read_keys(session, [("Task", task["id"]) for task in tasks])
    new = [task for task in tasks if ("Task", task["id"]) not in stored]
    lookup.save_all(session, new)  # stored together: one write, their rules once
    _link(session, plan, [f"Task/{t['id']}" for t in tasks])
    return [f"Task/{task['id']}" for task in new]


def _link(session: Session, plan: dict[str, Any], refs: list[str]) -> None:
    current = lookup.read(session, f"CarePlan/{plan['id']}") or plan
    linked = {
        ((a or {}).get("reference") or {}).get("reference") for a in current.get("activity") or []
    }
    missing = [r for r in refs if r not in linked]
    if missing:
        activity = list(current.get("activity") or []) + [
            {"reference": {"reference": r}} for r in missing
        ]
        # the stored plan with references to Tasks just stored added: not validated again
        lookup.save_all(session, [{**current, "activity": activity}], restated=True)


def measurement_tasks_of(session: Session, plan: dict[str, Any]) -> list[dict[str, Any]]:
    refs = [
        ((a or {}).get("reference") or {}).get("reference") or ""
        for a in plan.get("activity") or []
    ]
    task_refs = [r for r in refs if r.startswith("Task/")]
    found = lookup.read_all(session, task_refs) if task_refs else {}  # one query
    return [found[r] for r in task_refs if r in found and is_measurement(found[r])]
