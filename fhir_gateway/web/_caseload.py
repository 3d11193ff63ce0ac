"""Caseloads: which case manager looks after which patient.

A case manager who signs in to the web pages is a Practitioner (``practitioner_ref``: derived from
the user name, identified by ``urn:fhir-gateway:web-user``; created with ``users add --name`` or at
the first assignment). A patient's plan is assigned to one through its CareTeam: a participant
whose role is NUCC 171M00000X (Case Manager/Care Coordinator) and whose member is that
Practitioner. Assigning replaces that participant; the CareTeam's versions keep who it was before.

Every read and write goes through ``services.resources`` and the store's search with the user's
Caller, as the API's would.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.context import Caller
from fhir_gateway.errors import BusinessRule, InvalidRequest, NotFound
from fhir_gateway.fhir import care_team
from fhir_gateway.fhir.references import Reference
from fhir_gateway.monitors import MONITOR_FLAGS
from fhir_gateway.services import resources
from fhir_gateway.store import repository
from fhir_gateway.store.search import match_fields, match_ids
from fhir_gateway.web._display import Names, resource_name
from fhir_gateway.web._users import User, list_users

__all__ = [
    "NUCC",
    "CASE_MANAGER_ROLE",
    "WEB_USER_SYSTEM",
    "CaseloadRow",
    "practitioner_ref",
    "ensure_practitioner",
    "case_managers",
    "case_manager_of",
    "caseload_patients",
    "assign",
    "move_caseload",
    "overview",
]

NUCC = care_team.NUCC
CASE_MANAGER_ROLE = care_team.ASSIGNED_ROLE
WEB_USER_SYSTEM = "urn:fhir-gateway:web-user"
CASE_MANAGER_ACCOUNTS = frozenset({"case-manager", "admin"})
_LIVE_TEAM = "proposed,active"
_NAMESPACE = uuid.UUID("0d7c5f6e-3b1a-4c55-9a8e-8f1c2e4b6a10")


@dataclass(frozen=True, slots=True)
class CaseloadRow:
    practitioner: str  # Practitioner/id, or "" for the patients nobody looks after
    name: str
    username: str | None
    patients: int
    overdue: int  # active overdue-referral alerts of those patients


def practitioner_ref(username: str) -> str:
    return f"Practitioner/{uuid.uuid5(_NAMESPACE, username)}"


def ensure_practitioner(
    session: Session, caller: Caller, username: str, name: str | None = None
) -> str:
    """The user's Practitioner, created (or renamed, when ``name`` is given) as ``caller``."""
    ref = practitioner_ref(username)
    res_id = ref.split("/", 1)[1]
    current = repository.read(session, "Practitioner", res_id)
    if current is not None and not current.deleted and name is None:
        return ref
    doc = {
        "resourceType": "Practitioner",
        "id": res_id,
        "active": True,
        "identifier": [{"system": WEB_USER_SYSTEM, "value": username}],
        "name": [{"text": name or username}],
    }
    if current is None or current.deleted or current.content.get("name") != doc["name"]:
        resources.update(session, "Practitioner", res_id, doc, caller)
    return ref


def case_managers(session: Session) -> list[User]:
    return [u for u in list_users(session) if u.role in CASE_MANAGER_ACCOUNTS]


def case_manager_of(team: dict[str, Any] | None) -> str | None:
    """The Practitioner the CareTeam names as the patient's case manager, if any."""
    return care_team.assigned_case_manager(team)


def caseload_patients(session: Session, caller: Caller, practitioner: str) -> set[str]:
    """The patients (``Patient/id``) whose live care team names this case manager."""
    rows = match_fields(
        session,
        "CareTeam",
        [("participant", practitioner), ("status", _LIVE_TEAM)],
        {"patient": ("subject", "reference")},
        caller=caller,
    )
    return {r["patient"] for r in rows if r["patient"]}


# -- assigning ----------------------------------------------------------------------------------


def _plan(session: Session, caller: Caller, plan_id: str) -> dict[str, Any]:
    try:
        return dict(resources.read_served(session, "CarePlan", plan_id, caller).content)
    except NotFound:
        raise NotFound(f"There is no care plan {plan_id}.") from None


def assign(session: Session, caller: Caller, plan_id: str, username: str) -> None:
    """The plan's care team gets ``username`` as the patient's case manager."""
    if username not in {u.username for u in case_managers(session)}:
        raise InvalidRequest("Choose a case manager from the list.")
    plan = _plan(session, caller, plan_id)
    member = ensure_practitioner(session, caller, username)
    team_ref = next(iter(t.get("reference") for t in plan.get("careTeam") or []), None)
    team_id = Reference.id_of(team_ref, "CareTeam")
    if team_id is None:
        _new_team(session, caller, plan, member)
        return
    team = dict(resources.read(session, "CareTeam", team_id, caller).content)
    _set_case_manager(session, caller, team, member)


def _participant(member: str) -> dict[str, Any]:
    return {
        "role": [CASE_MANAGER_ROLE],
        "member": {"reference": member},
        "period": {"start": clock.to_instant(clock.now())},
    }


def _set_case_manager(session: Session, caller: Caller, team: dict[str, Any], member: str) -> None:
    if case_manager_of(team) == member:
        return
    others = [p for p in team.get("participant") or [] if not care_team.is_assigned(p)]
    team["participant"] = [*others, _participant(member)]
    resources.update(session, "CareTeam", team["id"], team, caller)


def _new_team(session: Session, caller: Caller, plan: dict[str, Any], member: str) -> None:
    """A plan made without a care team (through the API, say) gets one with its case manager."""
    team = {
        "resourceType": "CareTeam",
        "status": "active" if plan.get("status") == "active" else "proposed",
        "subject": plan.get("subject"),
        "participant": [_participant(member)],
    }
    team_id = repository.new_id()
    resources.create(session, "CareTeam", team, caller, res_id=team_id)
    plan["careTeam"] = [{"reference": f"CareTeam/{team_id}"}]
    resources.update(session, "CarePlan", plan["id"], plan, caller)


def move_caseload(session: Session, caller: Caller, from_user: str, to_user: str) -> int:
    """Every live care team of ``from_user``'s patients goes to ``to_user``; how many moved."""
    names = {u.username for u in case_managers(session)}
    if from_user not in names or to_user not in names:
        raise InvalidRequest("Choose two case managers from the list.")
    if from_user == to_user:
        raise BusinessRule("Choose a different case manager to move the caseload to.")
    source, member = practitioner_ref(from_user), ensure_practitioner(session, caller, to_user)
    ids = match_ids(
        session, "CareTeam", [("participant", source), ("status", _LIVE_TEAM)], caller=caller
    )
    moved = 0
    for stored in repository.read_many(session, "CareTeam", ids):
        team = dict(resources.served(session, caller, stored).content)
        if case_manager_of(team) == source:
            _set_case_manager(session, caller, team, member)
            moved += 1
    return moved


# -- the overview -------------------------------------------------------------------------------


def overview(session: Session, caller: Caller) -> list[CaseloadRow]:
    """Caseload size and overdue referrals per case manager (and of nobody's patients): a fixed
    number of queries, whatever the number of patients."""
    ids = match_ids(session, "CareTeam", [("status", _LIVE_TEAM)], caller=caller)
    keeper: dict[str, str] = {}  # patient → case manager ("" for nobody)
    for stored in repository.read_many(session, "CareTeam", ids):
        team = resources.served(session, caller, stored).content
        patient = (team.get("subject") or {}).get("reference")
        if patient:
            keeper[patient] = case_manager_of(team) or keeper.get(patient) or ""
    overdue_flags = match_fields(
        session,
        "Flag",
        [("_tag", f"{MONITOR_FLAGS}|overdue")],  # Flag has no status search parameter in R4
        {"patient": ("subject", "reference")},
        caller=caller,
        equal={("status",): "active"},
    )
    sizes = Counter(keeper.values())
    late = Counter(keeper.get(f["patient"], "") for f in overdue_flags if f["patient"] in keeper)
    users = {practitioner_ref(u.username): u.username for u in case_managers(session)}
    refs = list(dict.fromkeys([*users, *(k for k in sizes if k)]))
    names = Names(session, caller)
    names.prefetch(refs)
    rows = [
        CaseloadRow(
            ref,
            resource_name(names.resource(ref)) or users.get(ref) or "a clinician (no name)",
            users.get(ref),
            sizes.get(ref, 0),
            late.get(ref, 0),
        )
        for ref in refs
    ]
    rows.sort(key=lambda r: r.name.casefold())
    if sizes.get(""):
        rows.append(CaseloadRow("", "No case manager yet", None, sizes[""], late.get("", 0)))
    return rows
