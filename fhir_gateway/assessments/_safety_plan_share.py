"""Sharing the safety plan with the family, only under the patient's consent.

    decision = may_share(session, caller, "Patient/p1", "RelatedPerson/r1", now)
    decision = share_with_family(session, caller, settings, "Patient/p1", "RelatedPerson/r1")

A family member may receive the plan (a message through the family channel, or its printout) only
when they are on the patient's care team and an active Consent of the patient permits disclosure to
them, for care coordination, of data labelled like the plan: the privacy module's consent
evaluation, as the family messages of the monitors ask it. Otherwise the answer is a refusal with
its reason in words, and nothing is written.

A message is a CommunicationRequest (what the case manager asks to be communicated) and the
Communication that carries it, written with the case manager's rights and carrying the plan's
labels; Subscriptions deliver it to the family's channel as they do the monitors' family messages.
It names no diagnosis and gives the crisis line of the patient's country.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock, privacy
from fhir_gateway.assessments._safety_plan import questionnaire_of, safety_plan_of
from fhir_gateway.assessments._safety_plan_form import (
    SAFETY_PLAN_SYSTEM,
    response_of,
    sections_of,
)
from fhir_gateway.context import Caller
from fhir_gateway.errors import Forbidden, Gone, NotFound
from fhir_gateway.jurisdiction import IN, US, crisis_line
from fhir_gateway.services import resources as svc
from fhir_gateway.services.lookup import read as read_as_gateway
from fhir_gateway.settings import Settings
from fhir_gateway.store.search import match_ids

__all__ = [
    "SHARED",
    "ShareDecision",
    "family_of",
    "may_share",
    "share_with_family",
    "crisis_line_of",
    "plan_in_words",
]

SHARED = {
    "system": SAFETY_PLAN_SYSTEM,
    "code": "safety-plan-shared",
    "display": "Safety plan shared with family",
}
_TEAMS = 20  # care teams of one patient read; a bound, far above any real patient's
_FAMILY = 30  # family members listed for sharing: a bound on the consent evaluations of one page
_COUNTRIES = {"US": US, "USA": US, "UNITED STATES": US, "IN": IN, "IND": IN, "INDIA": IN}


@dataclass(frozen=True, slots=True)
class ShareDecision:
    permitted: bool
    reason: str  # in words, for the case manager
    person: str  # RelatedPerson/ID
    name: str

    def __bool__(self) -> bool:
        return self.permitted


def family_of(session: Session, caller: Caller, patient: str) -> list[str]:
    """The RelatedPersons on the patient's active care teams that ``caller`` may see."""
    ids = match_ids(
        session,
        "CareTeam",
        [("subject", patient), ("status", "active")],
        caller=caller,
        limit=_TEAMS,
    )
    found: dict[str, None] = {}
    for team_id in ids:
        team = svc.read(session, "CareTeam", team_id, caller).content
        for participant in team.get("participant") or []:
            member = str((participant.get("member") or {}).get("reference") or "")
            if member.startswith("RelatedPerson/"):
                found[member] = None
    return list(found)[:_FAMILY]


def _name(session: Session, caller: Caller, reference: str) -> str | None:
    """The person's name as ``caller`` may see it; None when hidden or absent."""
    res_type, _, res_id = reference.partition("/")
    try:
        doc = svc.read(session, res_type, res_id, caller).content
    except (NotFound, Gone, Forbidden):
        return None
    for name in doc.get("name") or []:
        text = name.get("text") or " ".join([*name.get("given", []), name.get("family", "")])
        if text.strip():
            return str(text).strip()
    return reference


def may_share(
    session: Session, caller: Caller, patient: str, person: str, at: datetime
) -> ShareDecision:
    """May the patient's safety plan go to ``person``? Raises NotFound when there is no plan
    (or none this caller may see) or no such person for it."""
    plan = safety_plan_of(session, caller, patient)
    name = _name(session, caller, person) if person.startswith("RelatedPerson/") else None
    if plan is None or name is None:
        raise NotFound("There is no safety plan of this patient, or no such family member.")
    if person not in family_of(session, caller, patient):
        return ShareDecision(
            False, f"{name} is not a family member on this patient's care team.", person, name
        )
    decision = privacy.evaluate_consent(
        privacy.consents_of(session, patient),
        patient=patient,
        recipient=person,
        labels=privacy.labels_of(plan.content),
        at=at,
    )
    if not decision.permitted:
        why = f"The patient has not consented to share their care information with {name}"
        # the consent's reading, with the person by name and the purpose in words
        detail = decision.reason.replace(person, name).replace(" for COC", " for care coordination")
        return ShareDecision(False, f"{why} ({detail}).", person, name)
    return ShareDecision(True, f"The patient's consent permits sharing with {name}.", person, name)


def crisis_line_of(settings: Settings, patient: dict[str, Any] | None) -> str:
    """What to call in a crisis in the patient's country: an MHCA patient's is India's, else the
    country of their address, else the gateway's default country."""
    if patient is not None and privacy.is_mhca(patient):
        return crisis_line(IN)
    for address in (patient or {}).get("address") or []:
        country = _COUNTRIES.get(str(address.get("country") or "").strip().upper())
        if country and address.get("use") != "old":
            return crisis_line(country)
    return crisis_line(settings.default_country)


def plan_in_words(session: Session, plan: dict[str, Any], line: str) -> str:
    """The plan as plain text for a message: each step and its entries, and the crisis line."""
    response = read_as_gateway(session, response_of(plan))
    lines = ["A safety plan, shared with you with your relative's consent."]
    for section in sections_of(response or {}, questionnaire_of(session)):
        heading = f"{section.step}: {section.title}" if section.step else section.title
        entries = "; ".join(f"{e.text} ({e.phone})" if e.phone else e.text for e in section.entries)
        lines.append(f"{heading}: {entries or '(nothing written)'}.")
    lines.append(f"In a crisis, {line}.")
    return "\n".join(lines)


def share_with_family(
    session: Session, caller: Caller, settings: Settings, patient: str, person: str
) -> ShareDecision:
    """Queue the plan for ``person`` through the family channel when the consent permits."""
    now = clock.now()
    decision = may_share(session, caller, patient, person, now)
    if not decision:
        return decision
    plan = safety_plan_of(session, caller, patient)
    assert plan is not None  # may_share found it
    patient_doc = read_as_gateway(session, patient)
    text = plan_in_words(session, plan.content, crisis_line_of(settings, patient_doc))
    common: dict[str, Any] = {
        "meta": {"security": privacy.labels_of(plan.content)},
        "category": [{"coding": [SHARED]}],
        "priority": "routine",
        "subject": {"reference": patient},
        "about": [{"reference": f"CarePlan/{plan.res_id}"}],
        "recipient": [{"reference": person}],
        "sender": {"reference": settings.referral_requester},
        "payload": [
            {"contentString": text},
            {"contentReference": {"reference": f"CarePlan/{plan.res_id}"}},
        ],
    }
    if not common["meta"]["security"]:
        del common["meta"]
    at = clock.to_instant(now)
    request = {
        "resourceType": "CommunicationRequest",
        **common,
        "status": "completed",
        "authoredOn": at,
        "requester": {"reference": settings.case_manager},
    }
    asked = svc.create(session, "CommunicationRequest", request, caller).stored
    assert asked is not None
    message = {
        "resourceType": "Communication",
        **common,
        "basedOn": [{"reference": f"CommunicationRequest/{asked.res_id}"}],
        "status": "completed",
        "sent": at,
    }
    svc.create(session, "Communication", message, caller)
    return decision
