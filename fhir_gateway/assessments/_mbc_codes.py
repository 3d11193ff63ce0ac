"""The codes of measurement-based care: the instruments it follows, the SDC Task codes of a
measurement that is due, and the gateway's own CodeSystem for response and remission.

``MBC`` (``http://fhir-gateway.org/fhir/CodeSystem/measurement-based-care``, stable: clients search
on it) codes the Observations ``_trend`` derives from the scored totals; it is stored as
``CodeSystem/measurement-based-care`` the first time one is written (``ensure_codesystem``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.services import lookup
from fhir_gateway.store import repository as repo

__all__ = [
    "MBC",
    "RESPONSE",
    "REMISSION",
    "BASELINE",
    "CHANGE",
    "LOINC",
    "SDC_TEMP",
    "COMPLETE_QUESTIONNAIRE",
    "MeasuredInstrument",
    "INSTRUMENTS",
    "instrument_of_total",
    "instrument_of_questionnaire",
    "codesystem",
    "ensure_codesystem",
    "bare",
]

MBC = "http://fhir-gateway.org/fhir/CodeSystem/measurement-based-care"
LOINC = "http://loinc.org"
SDC_TEMP = "http://hl7.org/fhir/uv/sdc/CodeSystem/temp"  # SDC's Task codes (complete-questionnaire)
COMPLETE_QUESTIONNAIRE = "complete-questionnaire"
RESPONSE = "response"
REMISSION = "remission"
BASELINE = "baseline"
CHANGE = "change-from-baseline"
_VERSION = "1.0.0"


@dataclass(frozen=True, slots=True)
class MeasuredInstrument:
    """One measured instrument: its total score's LOINC code, its Questionnaire and its rules."""

    key: str  # phq-9 | gad-7
    name: str  # as a person reads it
    total_code: str  # LOINC of the total score Observation
    questionnaire: str  # canonical URL (without version)
    maximum: int  # the highest total, for the chart's scale
    remission_below: int  # a total below this is remission
    response_drop: float  # a drop of at least this share of the baseline is a response


INSTRUMENTS: tuple[MeasuredInstrument, ...] = (
    MeasuredInstrument(
        "phq-9",
        "PHQ-9",
        "44261-6",
        "http://fhir-gateway.org/fhir/Questionnaire/phq-9",
        27,
        5,
        0.5,
    ),
    MeasuredInstrument(
        "gad-7",
        "GAD-7",
        "70274-6",
        "http://fhir-gateway.org/fhir/Questionnaire/gad-7",
        21,
        5,
        0.5,
    ),
)


def bare(canonical: str | None) -> str:
    """A canonical without its ``|version``."""
    return (canonical or "").split("|", 1)[0]


def instrument_of_total(observation: dict[str, Any]) -> MeasuredInstrument | None:
    codes = {
        (c.get("system"), c.get("code"))
        for c in (observation.get("code") or {}).get("coding") or []
        if isinstance(c, dict)
    }
    return next((i for i in INSTRUMENTS if (LOINC, i.total_code) in codes), None)


def instrument_of_questionnaire(canonical: str | None) -> MeasuredInstrument | None:
    url = bare(canonical)
    return next((i for i in INSTRUMENTS if i.questionnaire == url), None)


_CONCEPTS = {
    RESPONSE: (
        "Response to treatment",
        "A total at least 50% below the baseline (the first total of the same instrument at or "
        "after the discharge). valueBoolean: whether the total is a response.",
    ),
    REMISSION: (
        "Remission",
        "A total below 5 (PHQ-9, GAD-7). valueBoolean: whether the total is in remission.",
    ),
    BASELINE: (
        "Baseline total",
        "Component: the baseline total the response compares against.",
    ),
    CHANGE: (
        "Change from baseline",
        "Component: the change of the total from the baseline, in percent (negative: better).",
    ),
}


def codesystem() -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem",
        "id": "measurement-based-care",
        "url": MBC,
        "version": _VERSION,
        "name": "MeasurementBasedCare",
        "title": "Measurement-based care: response and remission",
        "status": "active",
        "publisher": "fhir-gateway",
        "description": "What the gateway derives from repeated PHQ-9 and GAD-7 totals after a "
        "psychiatric discharge.",
        "caseSensitive": True,
        "content": "complete",
        "concept": [
            {"code": code, "display": display, "definition": definition}
            for code, (display, definition) in _CONCEPTS.items()
        ],
    }


def ensure_codesystem(session: Session) -> None:
    """Store the CodeSystem when it is absent or older than this release's."""
    current = repo.read(session, "CodeSystem", "measurement-based-care")
    if current is None or current.deleted or current.content.get("version") != _VERSION:
        lookup.save(session, codesystem())
