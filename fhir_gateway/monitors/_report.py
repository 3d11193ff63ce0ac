"""FUH reports as use cases: evaluate a period (individual or summary) and, on request, store the
MeasureReports (deterministic ids: one per period and subject, updated when run again)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.monitors._fhir import save
from fhir_gateway.monitors._fuh import Outcome, evaluate, evaluate_for
from fhir_gateway.monitors._measure import individual_report, summary_report
from fhir_gateway.settings import Settings

__all__ = ["fuh_outcomes", "fuh_outcomes_for", "fuh_summary", "fuh_individual", "store_fuh_reports"]


def fuh_outcomes(
    session: Session, settings: Settings, start: date, end: date, patient: str | None = None
) -> list[Outcome]:
    return evaluate(session, settings, start, end, patient)


def fuh_outcomes_for(
    session: Session, settings: Settings, start: date, end: date, patients: Sequence[str]
) -> list[Outcome]:
    """``fuh_outcomes`` of each of ``patients``, at a cost that does not grow with their number."""
    return evaluate_for(session, settings, start, end, patients)


def fuh_summary(session: Session, settings: Settings, start: date, end: date) -> dict[str, Any]:
    return summary_report(
        evaluate(session, settings, start, end), start, end, settings.case_manager
    )


def fuh_individual(
    session: Session, settings: Settings, patient: str, start: date, end: date
) -> dict[str, Any]:
    return individual_report(
        patient, evaluate(session, settings, start, end, patient), start, end, settings.case_manager
    )


def store_fuh_reports(session: Session, settings: Settings, start: date, end: date) -> list[str]:
    """The summary and one individual MeasureReport per patient, stored; returns their references."""
    outcomes = evaluate(session, settings, start, end)
    docs = [summary_report(outcomes, start, end, settings.case_manager)]
    for patient in dict.fromkeys(o.discharge.patient for o in outcomes):
        docs.append(individual_report(patient, outcomes, start, end, settings.case_manager))
    return [save(session, doc) for doc in docs]
