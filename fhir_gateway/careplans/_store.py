"""Plan resources in the store: find a patient's plans and referrals, save, revoke, close."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.careplans._ids import IDENTIFIER_SYSTEM
from fhir_gateway.services import lookup
from fhir_gateway.services.lookup import read

__all__ = [
    "OPEN_TASK",
    "ACCEPTED_TASK",
    "NOT_YET_ACCEPTED",
    "is_engine_plan",
    "read",
    "save",
    "save_all",
    "plans_of_encounter",
    "live_plans_of_patient",
    "tasks_for",
    "tasks_by_request",
    "task_statuses",
    "activity_requests",
    "own_requests",
    "close_referrals",
    "retire_plan",
]

OPEN_TASK = frozenset(
    {"draft", "requested", "received", "ready", "accepted", "in-progress", "on-hold"}
)
ACCEPTED_TASK = frozenset({"accepted", "in-progress", "on-hold"})  # a partner took it on
NOT_YET_ACCEPTED = OPEN_TASK - ACCEPTED_TASK
_DONE_REQUEST = frozenset({"completed", "revoked", "entered-in-error"})


def is_engine_plan(plan: dict[str, Any]) -> bool:
    return any(i.get("system") == IDENTIFIER_SYSTEM for i in plan.get("identifier", []))


_search = lookup.search


def save(session: Session, doc: dict[str, Any]) -> str:
    """Store through the FHIR service (validated once, indexed, versioned); returns ``Type/id``."""
    lookup.save(session, doc)
    return f"{doc['resourceType']}/{doc['id']}"


def save_all(session: Session, docs: list[dict[str, Any]], *, restated: bool = False) -> list[str]:
    """``save`` of several resources, written together (``lookup.save_all``); their ``Type/id``s.
    ``restated``: stored ones with only a status or a note changed (not validated again)."""
    lookup.save_all(session, docs, restated=restated)
    return [f"{doc['resourceType']}/{doc['id']}" for doc in docs]


def plans_of_encounter(session: Session, encounter: str) -> list[dict[str, Any]]:
    return [
        p for p in _search(session, "CarePlan", [("encounter", encounter)]) if is_engine_plan(p)
    ]


def live_plans_of_patient(session: Session, patient: str) -> list[dict[str, Any]]:
    plans = _search(session, "CarePlan", [("subject", patient), ("status", "draft,active,on-hold")])
    return [p for p in plans if is_engine_plan(p)]


def activity_requests(plan: dict[str, Any]) -> list[str]:
    """The ServiceRequests a plan's activities reference (its own and carried-over ones)."""
    return [
        a["reference"]["reference"]
        for a in plan.get("activity", [])
        if (a.get("reference") or {}).get("reference", "").startswith("ServiceRequest/")
    ]


def own_requests(session: Session, plan: dict[str, Any]) -> list[str]:
    """The requests this plan issued: carried-over ones keep the basedOn of their first plan."""
    me = f"CarePlan/{plan['id']}"
    out = []
    for ref in activity_requests(plan):
        request = read(session, ref)
        if request is not None and any(
            b.get("reference") == me for b in request.get("basedOn", [])
        ):
            out.append(ref)
    return out


def tasks_for(session: Session, request_ref: str) -> list[dict[str, Any]]:
    return _search(session, "Task", [("focus", request_ref)])


def _reason(text: str) -> dict[str, str]:
    return {"text": text}


def tasks_by_request(session: Session, request_refs: list[str]) -> dict[str, list[dict[str, Any]]]:
    """``tasks_for`` of several requests in one search (per 100): the Tasks by their focus."""
    refs = list(dict.fromkeys(request_refs))
    tasks: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(refs), 100):  # references ORed in one search parameter
        for task in _search(session, "Task", [("focus", ",".join(refs[start : start + 100]))]):
            tasks.setdefault((task.get("focus") or {}).get("reference") or "", []).append(task)
    return tasks


def task_statuses(session: Session, request_refs: list[str]) -> dict[str, set[str]]:
    """The statuses of each request's Tasks (those with any), in one search."""
    return {
        ref: {t.get("status") or "" for t in tasks}
        for ref, tasks in tasks_by_request(session, request_refs).items()
    }


def close_referrals(session: Session, request_refs: list[str], reason: str) -> list[str]:
    """Cancel the open Tasks of these requests and revoke the requests (unless completed)."""
    refs = list(dict.fromkeys(request_refs))
    tasks = tasks_by_request(session, refs)
    requests = lookup.read_all(session, refs)
    written, cancelled, revoked = [], [], []
    for ref in refs:
        for task in tasks.get(ref, []):
            if task.get("status") in OPEN_TASK:
                cancelled.append({**task, "status": "cancelled", "statusReason": _reason(reason)})
                written.append(f"Task/{task['id']}")
        request = requests.get(ref)
        if request is not None and request.get("status") not in _DONE_REQUEST:
            revoked.append({**request, "status": "revoked"})
            written.append(ref)
    # the Tasks first, as one by one: then each request; a status and a reason text changed
    save_all(session, cancelled + revoked, restated=True)
    return written


_OPEN_GOAL = frozenset({"proposed", "planned", "accepted", "active", "on-hold"})
_OPEN_TEAM = frozenset({"proposed", "active", "suspended"})


def retire_plan(session: Session, plan: dict[str, Any], reason: str) -> list[str]:
    """The plan revoked, its goals cancelled and its care team inactive (referrals: see above):
    its goals and teams read in one query, the three written together in that order."""
    goal_refs = [g.get("reference") or "" for g in plan.get("goal", [])]
    team_refs = [t.get("reference") or "" for t in plan.get("careTeam", [])]
    found = lookup.read_all(session, [*goal_refs, *team_refs])
    goals = [found[r] for r in dict.fromkeys(goal_refs) if r in found]
    teams = [found[r] for r in dict.fromkeys(team_refs) if r in found]
    return save_all(
        session,
        [
            {**plan, "status": "revoked", "note": [*plan.get("note", []), {"text": reason}]},
            *(
                {**goal, "lifecycleStatus": "cancelled"}
                for goal in goals
                if goal.get("lifecycleStatus") in _OPEN_GOAL
            ),
            *({**team, "status": "inactive"} for team in teams if team.get("status") in _OPEN_TEAM),
        ],
        restated=True,  # stored ones, a status and a note changed
    )
