"""Who coordinates a referral: the person a partner calls about it and a message goes to.

In order: the case manager of the plan's CareTeam (``fhir.care_team``: the person assigned, NUCC
171M00000X, else the team's, SNOMED CT 768730001 as the care-plan engine writes it; a person
before an organisation; an ended participation does not count), else the plan's author, else
the Task's requester. Read as the gateway: the answer is a reference to a member of staff, whose
name and telecom the page then reads with its own caller's rights (the partner directory).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.fhir import care_team
from fhir_gateway.workflow._referrals import read, ref, search

__all__ = ["CASE_MANAGER_ROLES", "coordinators_of"]

CASE_MANAGER_ROLES = frozenset({care_team.ASSIGNED, care_team.TEAM})
_PEOPLE = ("Practitioner/", "PractitionerRole/")


def _case_manager(team: dict[str, Any] | None) -> str | None:
    """The assigned case manager, else the team's, a person before anything else."""
    found = care_team.case_managers(team)
    return next((m for m in found if m.startswith(_PEOPLE)), found[0] if found else None)


def _of_plan(session: Session, plan: dict[str, Any]) -> str | None:
    for team_ref in (t.get("reference") for t in plan.get("careTeam") or []):
        found = _case_manager(read(session, team_ref))
        if found:
            return found
    return ref(plan, "author")


def coordinators_of(session: Session, tasks: list[dict[str, Any]]) -> dict[str, str | None]:
    """Task id → the reference of its coordinator, for a page of referrals (one CarePlan search)."""
    requests = sorted({r for t in tasks if (r := ref(t, "focus"))})
    plans: dict[str, str | None] = {}
    if requests:
        found = search(session, "CarePlan", [("activity-reference", ",".join(requests))])
        for plan in sorted(found, key=lambda p: str(p.get("status") != "active")):
            who = _of_plan(session, plan)
            for activity in plan.get("activity") or []:
                target = (activity.get("reference") or {}).get("reference")
                if target in requests and plans.get(target) is None:
                    plans[target] = who
    return {
        t["id"]: plans.get(ref(t, "focus") or "") or ref(t, "requester") for t in tasks if "id" in t
    }
