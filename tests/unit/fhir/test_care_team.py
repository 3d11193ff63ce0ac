"""Whom a CareTeam names as case manager: one reading for the worklist, the patient page, the
measurement schedule and the referral's coordinator."""

from __future__ import annotations

from typing import Any

from fhir_gateway.fhir import care_team

TEAM_ROLE = {"coding": [{"system": "http://snomed.info/sct", "code": "768730001"}]}


def _participant(member: str, role: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"role": [role], "member": {"reference": member}, **extra}


def test_the_assigned_person_comes_before_the_team() -> None:
    team = {
        "participant": [
            _participant("Organization/coordination", TEAM_ROLE),
            _participant("Practitioner/carla", care_team.ASSIGNED_ROLE),
        ]
    }
    assert care_team.assigned_case_manager(team) == "Practitioner/carla"
    assert care_team.case_managers(team) == ["Practitioner/carla", "Organization/coordination"]


def test_an_ended_assignment_no_longer_counts() -> None:
    ended = _participant("Practitioner/old", care_team.ASSIGNED_ROLE, period={"end": "2026-01-01"})
    team = {"participant": [ended, _participant("Practitioner/new", care_team.ASSIGNED_ROLE)]}
    assert care_team.assigned_case_manager(team) == "Practitioner/new"
    assert care_team.is_assigned(ended)  # still in the role: the worklist replaces it
    assert care_team.assigned_case_manager({"participant": [ended]}) is None


def test_a_team_may_assign_two_case_managers() -> None:
    team = {
        "participant": [
            _participant("Practitioner/a", care_team.ASSIGNED_ROLE),
            _participant("Practitioner/b", care_team.ASSIGNED_ROLE),
        ]
    }
    assert care_team.assigned_case_managers(team) == ["Practitioner/a", "Practitioner/b"]
    assert care_team.assigned_case_manager(team) == "Practitioner/a"


def test_the_code_counts_only_in_its_own_system() -> None:
    elsewhere = {"coding": [{"system": "http://example.org/local", "code": "171M00000X"}]}
    assert (
        care_team.case_managers({"participant": [_participant("Practitioner/x", elsewhere)]}) == []
    )


def test_odd_shapes_name_nobody_rather_than_fail() -> None:
    for team in (
        None,
        {},
        {"participant": None},
        {"participant": ["not a participant", {"role": ["x"], "member": None}]},
        {"participant": [{"role": [care_team.ASSIGNED_ROLE]}]},  # no member
        {"participant": [{"role": [care_team.ASSIGNED_ROLE], "member": "Practitioner/x"}]},
    ):
        assert care_team.case_managers(team) == []
