"""The patient page as one read model: every section read with the viewer's Caller.

    page = database.read(patient_page, caller, settings, "p1")   # None: no such patient for them

A patient the viewer may not see answers exactly as one that does not exist (None).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import privacy
from fhir_gateway.context import Caller
from fhir_gateway.settings import Settings
from fhir_gateway.web._follow_up import PatientFollowUp, patient_follow_up
from fhir_gateway.web._patient_caring import CaringContacts, caring_contacts
from fhir_gateway.web._patient_consents import ConsentStatus, consent_status
from fhir_gateway.web._patient_directives import DirectivesSection, advance_directives_section
from fhir_gateway.web._patient_measures import MeasuresSection, measures_section
from fhir_gateway.web._patient_plans import PatientPlan, plans
from fhir_gateway.web._patient_reader import PatientReader
from fhir_gateway.web._patient_record import (
    Diagnosis,
    PatientContact,
    PatientSummary,
    Visit,
    case_managers,
    contacts,
    diagnoses,
    person,
    visits,
)
from fhir_gateway.web._patient_relapse import RelapseSection, relapse_section
from fhir_gateway.web._patient_revisions import HeldActivity, held_activities
from fhir_gateway.web._patient_risk import RiskBanner, risk_banner
from fhir_gateway.web._patient_timeline import TimelineRow, timeline

__all__ = ["PatientPage", "patient_page", "open_patient"]


@dataclass(slots=True)
class PatientPage:
    patient_id: str
    person: PatientSummary
    case_managers: list[str]
    zone: str
    directives: DirectivesSection
    risk: RiskBanner
    relapse: RelapseSection  # the relapse-prevention plan and its warning-signs reports
    diagnoses: list[Diagnosis]
    visits: list[Visit]
    follow_up: PatientFollowUp | None  # of the latest psychiatric discharge
    contacts: list[PatientContact]
    consents: ConsentStatus
    plans: list[PatientPlan]
    timeline: list[TimelineRow]
    measures: MeasuresSection  # due PHQ-9/GAD-7, the questionnaires, the totals' trend
    caring: CaringContacts | None = None  # the caring contacts after discharge, if any
    held: list[HeldActivity] = field(default_factory=list)  # a screening's additions to approve


def open_patient(
    session: Session, caller: Caller, settings: Settings, patient_id: str
) -> tuple[PatientReader, dict[str, Any]] | None:
    """A reader for the patient's page, and the patient as the caller may see them (or None)."""
    reader = PatientReader.open(session, caller, settings, patient_id)
    patient = reader.names.resource(reader.patient_ref)
    return None if patient is None else (reader, patient)


def patient_page(
    session: Session, caller: Caller, settings: Settings, patient_id: str
) -> PatientPage | None:
    opened = open_patient(session, caller, settings, patient_id)
    if opened is None:
        return None
    reader, patient = opened
    related = reader.of_patient("RelatedPerson")
    directives = advance_directives_section(reader)
    mhca = privacy.is_mhca(patient) or bool(directives.directives)
    return PatientPage(
        patient_id=patient_id,
        person=person(reader, patient),
        case_managers=case_managers(reader),
        zone=reader.clock.zone.key,
        directives=directives,
        risk=risk_banner(reader),
        relapse=relapse_section(reader),
        diagnoses=diagnoses(reader),
        visits=visits(reader),
        follow_up=patient_follow_up(reader),
        contacts=contacts(
            reader, patient, mhca=mhca, named_in_directives=directives.representatives_named
        ),
        consents=consent_status(reader, related),
        plans=plans(reader),
        timeline=timeline(reader),
        measures=measures_section(reader),
        caring=caring_contacts(reader),
        held=held_activities(reader),
    )
