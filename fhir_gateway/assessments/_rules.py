"""How assessments ride on the gateway's writes (``install``, idempotent):

- ``before_write("Questionnaire")``: a Questionnaire whose expressions do not compile, or that weighs
  one answer code twice, is refused (422): an edit through the API cannot break scoring;
- ``before_write("QuestionnaireResponse")``: the response must fit its stored Questionnaire
  (``_validate``), whichever door it came by (REST, transaction, a web form);
- ``after_write("QuestionnaireResponse")``: a completed, amended or stopped response is scored in the
  same transaction; each extracted item becomes an Observation ``derivedFrom`` it, written with the
  rights of the caller who wrote the response (through the FHIR service, so the Observation's own
  checks and consequences run); an incomplete one raises the ``assessment-incomplete`` work item.
  Re-scoring an updated response updates the same Observations (ids keyed on response and item);
  a response deleted or entered-in-error takes its Observations to entered-in-error.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import hooks
from fhir_gateway.assessments._instruments import Instrument, build, instrument, unusable
from fhir_gateway.assessments._observations import observation
from fhir_gateway.assessments._scoring import Scores, score
from fhir_gateway.assessments._validate import check_response, refuse
from fhir_gateway.assessments._workitem import end_incomplete, raise_incomplete
from fhir_gateway.context import Caller
from fhir_gateway.errors import BusinessRule, Issue
from fhir_gateway.hooks import WriteEvent
from fhir_gateway.services import lookup
from fhir_gateway.settings import Settings
from fhir_gateway.store.keyed_ids import keyed_id
from fhir_gateway.store.repository import StoredResource

__all__ = [
    "install",
    "validate",
    "score_response",
    "observation_id",
    "flag_id",
    "observations_of",
]

_NAMESPACE = uuid.UUID("5d0f7a52-3c1e-4f8b-a6d2-9e4b1c7f0a33")
_SCORED = frozenset({"completed", "amended", "stopped"})


def observation_id(response_id: str, link: str) -> str:
    """The Observation of item ``link`` of a response: always the same, unguessable by clients."""
    return keyed_id(_NAMESPACE, f"observation|{response_id}|{link}")


def flag_id(response_id: str) -> str:
    return keyed_id(_NAMESPACE, f"incomplete|{response_id}")


def install(rules: hooks.Rules, settings: Settings | None = None) -> None:
    """Register the checks and the scoring (they read the app's settings from the session)."""
    del settings
    rules.before_write("Questionnaire", _check_questionnaire)
    rules.before_write("QuestionnaireResponse", _check_response)
    rules.after_write("QuestionnaireResponse", _on_response)


def _check_questionnaire(event: WriteEvent) -> list[Issue] | None:
    if event.after is not None:
        build(event.after)  # raises ExpressionError (422) naming what cannot be used
    return None


def validate(session: Session, response: dict[str, Any]) -> Instrument:
    """Raise BusinessRule (422) unless ``response`` fits its stored Questionnaire; returns it."""
    canonical = response.get("questionnaire")
    found = instrument(session, canonical)
    if found is None:
        why = unusable(session, canonical)
        raise BusinessRule(
            f"QuestionnaireResponse.questionnaire {str(canonical)[:200]!r} names no stored "
            + (f"Questionnaire that can be used: {why}" if why else "Questionnaire"),
            expression=["QuestionnaireResponse.questionnaire"],
        )
    issues = check_response(found, response)
    if found.extracted and not (response.get("subject") or {}).get("reference"):
        issues.append(
            Issue(
                "A scored response needs its subject (the patient)",
                code="business-rule",
                expression=["QuestionnaireResponse.subject"],
            )
        )
    refuse(issues)
    return found


def _check_response(event: WriteEvent) -> list[Issue] | None:
    if event.after is not None:
        validate(event.session, event.after)
    return None


def _on_response(event: WriteEvent, stored: StoredResource | None) -> None:
    if stored is None:
        return
    if stored.deleted or stored.content.get("status") == "entered-in-error":
        _withdraw(event.session, event.caller, stored.res_id)
    elif stored.content.get("status") in _SCORED:
        score_response(event.session, event.caller, stored.content)


def score_response(
    session: Session, caller: Caller, response: dict[str, Any]
) -> list[dict[str, Any]]:
    """Score a stored response and store its Observations (and work item); returns them."""
    found = instrument(session, response.get("questionnaire"))
    if found is None or not found.extracted:
        return []
    scores = score(found, response)
    stored = []
    for link, value in scores.values.items():
        doc = observation(
            found,
            response,
            link,
            value,
            scores.missing.get(link, []),
            observation_id(response["id"], link),
        )
        stored.append(lookup.save(session, _amended(session, doc), caller))
    _work_item(session, found, response, scores)
    return [s.content for s in stored if s is not None]


def _result(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k.startswith("value") or k == "dataAbsentReason"}


def _amended(session: Session, doc: dict[str, Any]) -> dict[str, Any]:
    """A re-scored response whose result changed: the Observation becomes ``amended``."""
    current = lookup.read(session, f"Observation/{doc['id']}")
    if current is None:
        return doc
    if current.get("status") == "amended" or _result(current) != _result(doc):
        return {**doc, "status": "amended"}
    return doc


def _work_item(
    session: Session, found: Instrument, response: dict[str, Any], scores: Scores
) -> None:
    missing = list(dict.fromkeys(m for links in scores.missing.values() for m in links))
    key = flag_id(response["id"])
    if not missing:
        end_incomplete(session, key)
        return
    title = str(found.questionnaire.get("title") or found.url)
    raise_incomplete(
        session,
        key,
        response,
        title,
        [found.label(m) for m in missing],
        safety=any(m in found.safety for m in missing),
        author=hooks.settings_of(session).case_manager,
    )


def observations_of(session: Session, response_ref: str) -> list[dict[str, Any]]:
    return lookup.search(session, "Observation", [("derived-from", response_ref)])


def _withdraw(session: Session, caller: Caller, response_id: str) -> None:
    for doc in observations_of(session, f"QuestionnaireResponse/{response_id}"):
        if doc.get("status") != "entered-in-error":
            lookup.save(session, {**doc, "status": "entered-in-error"}, caller)
    end_incomplete(session, flag_id(response_id))
