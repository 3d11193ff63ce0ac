"""Recording a questionnaire with the patient from the patient page (use cases; the routes are in
``_measure_routes``): the form of any stored Questionnaire, the posted answers as a
QuestionnaireResponse created through the FHIR service with the user's Caller (the instruments'
validation and scoring, and the completion of a due measurement, ride on that write), and the
result: the scores the gateway derived from it.

A patient or Questionnaire the user may not see answers as one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.context import Caller
from fhir_gateway.errors import NotFound
from fhir_gateway.services import resources
from fhir_gateway.settings import Settings
from fhir_gateway.web._caseload import ensure_practitioner
from fhir_gateway.web._patient_page import open_patient
from fhir_gateway.web._patient_reader import PatientReader, codings, concept_text
from fhir_gateway.web._questionnaire_form import (
    CheckedAnswers,
    Fields,
    check_answers,
    form_items,
    response_items,
)

__all__ = ["form_context", "submit_response", "result_context", "SubmittedResponse", "ScoreRow"]


def _opened(
    session: Session, caller: Caller, settings: Settings, patient_id: str
) -> tuple[PatientReader, dict[str, Any]]:
    opened = open_patient(session, caller, settings, patient_id)
    if opened is None:
        raise NotFound(f"There is no patient {patient_id}.")
    return opened


def _questionnaire(session: Session, caller: Caller, questionnaire_id: str) -> dict[str, Any]:
    try:
        found = resources.read(session, "Questionnaire", questionnaire_id, caller).content
    except NotFound as exc:
        raise NotFound(f"There is no questionnaire {questionnaire_id}.") from exc
    if found.get("status") == "retired":
        raise NotFound(f"The questionnaire {questionnaire_id} is retired.")
    return found


def _title(questionnaire: dict[str, Any]) -> str:
    return str(questionnaire.get("title") or questionnaire.get("name") or questionnaire["id"])


def form_context(
    session: Session,
    caller: Caller,
    settings: Settings,
    patient_id: str,
    questionnaire_id: str,
    checked: CheckedAnswers | None = None,
) -> dict[str, Any]:
    reader, patient = _opened(session, caller, settings, patient_id)
    questionnaire = _questionnaire(session, caller, questionnaire_id)
    return {
        "patient_id": patient_id,
        "patient": reader.names.of(reader.patient_ref),
        "questionnaire_id": questionnaire_id,
        "title": _title(questionnaire),
        "description": str(questionnaire.get("description") or ""),
        "copyright": str(questionnaire.get("copyright") or ""),
        "items": form_items(questionnaire),
        "errors": checked.errors if checked else {},
        "values": checked.values if checked else {},
    }


@dataclass(slots=True)
class SubmittedResponse:
    checked: CheckedAnswers
    response_id: str | None = None


def _response(
    questionnaire: dict[str, Any],
    patient_id: str,
    author: str,
    username: str,
    checked: CheckedAnswers,
) -> dict[str, Any]:
    canonical = str(questionnaire.get("url") or f"Questionnaire/{questionnaire['id']}")
    if questionnaire.get("url") and questionnaire.get("version"):
        canonical += f"|{questionnaire['version']}"
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": canonical,
        "status": "completed",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authored": clock.to_instant(clock.now()),
        "author": {"reference": author, "display": username},
        "source": {"reference": f"Patient/{patient_id}"},  # the patient answered
        "item": response_items(questionnaire.get("item"), checked.answers),
    }


def submit_response(
    session: Session,
    caller: Caller,
    settings: Settings,
    username: str,
    patient_id: str,
    questionnaire_id: str,
    fields: Fields,
) -> SubmittedResponse:
    """Check the form; store the response when it holds (what the instruments' validation
    refuses raises, and the caller shows it on the form)."""
    _opened(session, caller, settings, patient_id)
    questionnaire = _questionnaire(session, caller, questionnaire_id)
    checked = check_answers(questionnaire, fields)
    if not checked.ok:
        return SubmittedResponse(checked)
    author = ensure_practitioner(session, caller, username)  # who asked, as a Practitioner
    doc = _response(questionnaire, patient_id, author, username, checked)
    stored = resources.create(session, "QuestionnaireResponse", doc, caller).stored
    assert stored is not None
    return SubmittedResponse(checked, str(stored.content["id"]))


@dataclass(frozen=True, slots=True)
class ScoreRow:
    name: str
    value: str


@dataclass(slots=True)
class ResponseResult:
    title: str
    patient: str
    authored: str
    scores: list[ScoreRow] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)  # the due measurements it completed


def _value(obs: dict[str, Any]) -> str:
    if obs.get("valueInteger") is not None:
        return str(obs["valueInteger"])
    if "valueBoolean" in obs:
        return "yes" if obs["valueBoolean"] else "no"
    if obs.get("valueCodeableConcept"):
        return concept_text(obs["valueCodeableConcept"])
    if obs.get("dataAbsentReason"):
        return "not scored: " + concept_text(obs["dataAbsentReason"], "incomplete")
    return "no value"


def _scores(reader: PatientReader, response_ref: str) -> list[ScoreRow]:
    found = reader.find("Observation", [("derived-from", response_ref)])
    rows = [ScoreRow(concept_text(o.get("code"), "Score"), _value(o)) for o in found]
    totals = [o for o in found if o.get("valueInteger") is not None]
    for total in totals:  # response and remission of the total, as the gateway derived them
        for obs in reader.find("Observation", [("derived-from", f"Observation/{total['id']}")]):
            if obs.get("status") == "final" and codings(obs.get("code")):
                if obs["derivedFrom"][-1].get("reference") == f"Observation/{total['id']}":
                    rows.append(ScoreRow(concept_text(obs.get("code"), "Derived"), _value(obs)))
    return rows


def result_context(
    session: Session, caller: Caller, settings: Settings, patient_id: str, response_id: str
) -> ResponseResult:
    reader, _ = _opened(session, caller, settings, patient_id)
    try:
        response = resources.read(session, "QuestionnaireResponse", response_id, caller).content
    except NotFound as exc:
        raise NotFound(f"There is no questionnaire response {response_id}.") from exc
    if (response.get("subject") or {}).get("reference") != reader.patient_ref:
        raise NotFound(f"There is no questionnaire response {response_id}.")
    ref = f"QuestionnaireResponse/{response_id}"
    named = str(response.get("questionnaire") or "").split("|", 1)[0]
    found = reader.find("Questionnaire", [("url", named)]) if "/Questionnaire/" in named else []
    done = [
        str(t.get("description") or "").split(":", 1)[0]
        for t in reader.of_patient("Task")
        if any(
            (o.get("valueReference") or {}).get("reference") == ref for o in t.get("output") or []
        )
    ]
    return ResponseResult(
        title=_title(found[0]) if found else "Questionnaire",
        patient=reader.names.of(reader.patient_ref),
        authored=reader.clock.when(response.get("authored")),
        scores=_scores(reader, ref),
        completed=done,
    )
