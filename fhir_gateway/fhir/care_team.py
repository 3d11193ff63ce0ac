"""Whom a CareTeam names as the patient's case manager, read the same way by every engine and page.

Two roles say so: NUCC 171M00000X "Case Manager/Care Coordinator", a person assigned to the
patient (by the worklist, or by the hospital's own CareTeam), and SNOMED CT 768730001 "Case
manager", the role the care-plan engine gives the care-coordination team. The assigned person
comes first. A participation whose period has an end (it was ended) no longer counts."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ASSIGNED",
    "ASSIGNED_ROLE",
    "NUCC",
    "TEAM",
    "assigned_case_manager",
    "assigned_case_managers",
    "case_managers",
    "is_assigned",
]

NUCC = "http://nucc.org/provider-taxonomy"
ASSIGNED = (NUCC, "171M00000X")
TEAM = ("http://snomed.info/sct", "768730001")
ASSIGNED_ROLE = {
    "coding": [{"system": NUCC, "code": "171M00000X", "display": "Case Manager/Care Coordinator"}]
}


def is_assigned(participant: dict[str, Any]) -> bool:
    """Whether the participation is in the assigned person's role (NUCC), ended or not."""
    return ASSIGNED in _roles(participant)


def assigned_case_manager(team: dict[str, Any] | None) -> str | None:
    """The member the CareTeam names in the assigned role, if any (the first, if several)."""
    found = assigned_case_managers(team)
    return found[0] if found else None


def assigned_case_managers(team: dict[str, Any] | None) -> list[str]:
    """Every member the CareTeam names in the assigned role."""
    return _members(team, ASSIGNED)


def case_managers(team: dict[str, Any] | None) -> list[str]:
    """The members named in either role: those assigned first, then the team's."""
    return list(dict.fromkeys(_members(team, ASSIGNED) + _members(team, TEAM)))


def _members(team: dict[str, Any] | None, role: tuple[str, str]) -> list[str]:
    return [
        str(member)
        for participant in (team or {}).get("participant") or []
        if isinstance(participant, dict)
        and role in _roles(participant)
        and not (participant.get("period") or {}).get("end")
        and isinstance(participant.get("member"), dict)
        and (member := participant["member"].get("reference"))
    ]


def _roles(participant: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (str(coding.get("system")), str(coding.get("code")))
        for role in participant.get("role") or []
        if isinstance(role, dict)
        for coding in role.get("coding") or []
        if isinstance(coding, dict)
    }
