"""The safety plan's pages as read models and use cases, each with the signed-in user's Caller:

    plan = database.read(printable, caller, settings, "p1", None)   # the printout (None: 404)
    form = database.read(plan_form, caller, settings, "p1")         # the form, filled in
    done = database.write(save_plan, caller, settings, "p1", posted)
    decision = database.write(send_to_family, caller, settings, "p1", "r1")

A patient, plan or response the user may not see answers exactly as one that does not exist. A
printout for a family member, like a message to them, needs the patient's consent
(``assessments.may_share``); without it the refusal says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import assessments, clock
from fhir_gateway.assessments import Section, ShareDecision
from fhir_gateway.context import Caller
from fhir_gateway.errors import Forbidden, Gone, NotFound
from fhir_gateway.services import resources as svc
from fhir_gateway.settings import Settings
from fhir_gateway.web._patient_page import open_patient
from fhir_gateway.web._patient_reader import PatientReader
from fhir_gateway.web._safety_plan_form import FormSection, form_sections, response_from_form

__all__ = [
    "PrintedPlan",
    "PlanForm",
    "Saved",
    "printable",
    "plan_form",
    "save_plan",
    "send_to_family",
]


@dataclass(slots=True)
class PrintedPlan:
    patient_id: str
    name: str
    sections: list[Section]
    crisis_line: str
    updated: str  # the day of the current version, in words
    updated_iso: str
    family: list[ShareDecision]  # on screen only: who may be given it, and why (not)
    printed_for: str | None  # the family member's name when printed for them


@dataclass(slots=True)
class PlanForm:
    patient_id: str
    name: str
    sections: list[FormSection]
    errors: dict[str, str]
    has_plan: bool


@dataclass(slots=True)
class Saved:
    ok: bool
    form: PlanForm | None = None  # the form again, with the errors and what was typed


def _patient(
    session: Session, caller: Caller, settings: Settings, patient_id: str
) -> tuple[PatientReader, dict[str, Any]]:
    opened = open_patient(session, caller, settings, patient_id)
    if opened is None:
        raise NotFound(f"There is no patient {patient_id}.")
    return opened


def _response(session: Session, caller: Caller, plan: dict[str, Any]) -> dict[str, Any] | None:
    """The plan's response as the user may see it (None: none, or hidden from them)."""
    res_type, _, res_id = str(assessments.response_of(plan) or "").partition("/")
    try:
        return svc.read_served(session, res_type, res_id, caller).content if res_id else None
    except (NotFound, Gone, Forbidden):
        return None


def _long_day(reader: PatientReader, value: Any) -> str:
    local = reader.clock.local(value)
    return f"{local.day} {local:%B %Y}" if local is not None else ""


def printable(
    session: Session, caller: Caller, settings: Settings, patient_id: str, for_person: str | None
) -> PrintedPlan:
    """The printout of the patient's plan; for a family member only under the patient's consent."""
    reader, patient = _patient(session, caller, settings, patient_id)
    ref = reader.patient_ref
    plan = assessments.safety_plan_of(session, caller, ref)
    response = _response(session, caller, plan.content) if plan is not None else None
    if plan is None or response is None:
        raise NotFound("There is no safety plan of this patient yet.")
    now = clock.now()
    family = [
        assessments.may_share(session, caller, ref, person, now)
        for person in assessments.family_of(session, caller, ref)
    ]
    printed_for = None
    if for_person:
        decision = assessments.may_share(session, caller, ref, f"RelatedPerson/{for_person}", now)
        if not decision:
            raise Forbidden(f"This plan may not be printed for {decision.name}. {decision.reason}")
        printed_for = decision.name
    stamp = plan.content.get("period", {}).get("start") or plan.last_updated
    return PrintedPlan(
        patient_id=patient_id,
        name=reader.names.of(ref),
        sections=assessments.sections_of(response, assessments.questionnaire_of(session)),
        crisis_line=assessments.crisis_line_of(settings, patient),
        updated=_long_day(reader, stamp),
        updated_iso=reader.clock.iso(stamp),
        family=family,
        printed_for=printed_for,
    )


def plan_form(session: Session, caller: Caller, settings: Settings, patient_id: str) -> PlanForm:
    """The form, filled in with the current plan's answers (empty for a first plan)."""
    reader, _ = _patient(session, caller, settings, patient_id)
    plan = assessments.safety_plan_of(session, caller, reader.patient_ref)
    response = _response(session, caller, plan.content) if plan is not None else None
    return PlanForm(
        patient_id,
        reader.names.of(reader.patient_ref),
        form_sections(assessments.questionnaire_of(session), response),
        {},
        plan is not None,
    )


def save_plan(
    session: Session, caller: Caller, settings: Settings, patient_id: str, posted: dict[str, str]
) -> Saved:
    """Store the posted plan as a completed response, with the user's rights (the write rules
    make the CarePlan and complete the review); a form with errors is returned, nothing stored."""
    reader, _ = _patient(session, caller, settings, patient_id)
    questionnaire = assessments.questionnaire_of(session)
    authored = clock.to_instant(clock.now())
    response, errors = response_from_form(questionnaire, reader.patient_ref, posted, authored)
    if errors:
        sections = form_sections(questionnaire, response)
        for section in sections:
            for field in section.fields:
                field.error = errors.get(field.name, "")
                if field.kind in ("lines", "text") and field.name in posted:
                    field.value = posted[field.name]  # as typed, also when refused
        name = reader.names.of(reader.patient_ref)
        return Saved(False, PlanForm(patient_id, name, sections, errors, False))
    svc.create(session, "QuestionnaireResponse", response, caller)
    return Saved(True)


def send_to_family(
    session: Session, caller: Caller, settings: Settings, patient_id: str, person_id: str
) -> ShareDecision:
    reader, _ = _patient(session, caller, settings, patient_id)
    return assessments.share_with_family(
        session, caller, settings, reader.patient_ref, f"RelatedPerson/{person_id}"
    )
