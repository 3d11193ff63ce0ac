"""AHC-HRSN answers → SDOH Observations and health concerns, as the Gravity SDOH Clinical Care IG
shows them, stored in the transaction of the QuestionnaireResponse with its writer's rights:

- one SDOHCC Observation Screening Response per answer to a mapped question (category survey,
  sdoh and the domain; code the LOINC question; value the LOINC answer; effective the response's
  ``authored``; ``derivedFrom`` the response); a mapped question left unanswered gets one with
  ``dataAbsentReason`` (it never counts as negative nor positive);
- one SDOHCC Condition per domain with a positive answer (category health-concern, sdoh and the
  domain; clinicalStatus active, verificationStatus unconfirmed; code SNOMED CT / ICD-10-CM as the
  IG examples; ``evidence.detail`` the Observations that raised it);
- the response's security labels on each.

Which answers are positive is the stored ConceptMap's (``_sdohmap``). Ids are keyed per response
(and question, answer, domain): a response stored again updates the same resources; a concern
its amended answers no longer raise, and everything of a response withdrawn (entered-in-error or
deleted), becomes entered-in-error.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import privacy
from fhir_gateway.assessments._sdohmap import SDOH_MAP_URL, SdohMap, read_map
from fhir_gateway.context import Caller
from fhir_gateway.hooks import WriteEvent
from fhir_gateway.services import lookup
from fhir_gateway.services import resources as svc
from fhir_gateway.store.keyed_ids import keyed_id
from fhir_gateway.store.repository import StoredResource

__all__ = ["on_response", "derive", "sdoh_map_for"]

_NAMESPACE = uuid.UUID("3d7c4b9e-8a21-4f6b-b0d5-1c2e9f7a6b44")
_SCORED = frozenset({"completed", "amended", "stopped"})
_MAX_ITEMS, _MAX_ANSWERS, _MAX_DEPTH = 500, 50, 10
_LOINC = "http://loinc.org"
_OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_US_CORE_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"
_CONDITION_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"
_PROFILE = "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/"
_PROFILE_OBS = f"{_PROFILE}SDOHCC-ObservationScreeningResponse"
_PROFILE_CONDITION = f"{_PROFILE}SDOHCC-Condition"
_SDOH = {"system": _US_CORE_CATEGORY, "code": "sdoh", "display": "SDOH"}
_ABSENT = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
            "code": "asked-unknown",
            "display": "Asked But Unknown",
        }
    ],
    "text": "Not answered",
}


def _canonical(session: Session, value: str) -> str:
    """The Questionnaire's canonical URL (a ``Questionnaire/id`` reference read for its url)."""
    value = value.split("|", 1)[0]
    if value.startswith("Questionnaire/"):
        return str((lookup.read(session, value) or {}).get("url") or value)
    return value


def sdoh_map_for(session: Session, questionnaire: str) -> SdohMap | None:
    for doc in lookup.search(session, "ConceptMap", [("url", SDOH_MAP_URL)]):
        found = read_map(doc)
        if doc.get("status") != "retired" and found.questionnaire == _canonical(
            session, questionnaire
        ):
            return found
    return None


def _items(items: list[dict[str, Any]], depth: int = 0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if depth > _MAX_DEPTH:
        return out
    for item in items[:_MAX_ITEMS]:
        out.append(item)
        out += _items(item.get("item", []), depth + 1)
        for answer in item.get("answer", [])[:_MAX_ANSWERS]:
            out += _items(answer.get("item", []), depth + 1)
    return out[:_MAX_ITEMS]


def _question_codes(session: Session, questionnaire: str) -> dict[str, dict[str, Any]]:
    """linkId → the Questionnaire item's LOINC coding (with its text as display)."""
    stored = (
        lookup.read(session, questionnaire) if questionnaire.startswith("Questionnaire/") else None
    )
    if stored is None:
        url = questionnaire.split("|", 1)[0]
        found = lookup.search(session, "Questionnaire", [("url", url)])
        stored = found[0] if found else None
    codes: dict[str, dict[str, Any]] = {}
    for item in _items((stored or {}).get("item", [])):
        loinc = next((c for c in item.get("code", []) if c.get("system") == _LOINC), None)
        if loinc is not None and item.get("linkId"):
            codes[str(item["linkId"])] = {
                **loinc,
                "display": item.get("text") or loinc.get("display"),
            }
    return codes


def _id(*parts: str) -> str:
    return keyed_id(_NAMESPACE, "|".join(parts))


def _common(response: dict[str, Any], labels: list[dict[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {"subject": response["subject"]}
    if labels:
        doc["meta"] = {"security": labels}
    return doc


def _observation(
    response: dict[str, Any],
    labels: list[dict[str, Any]],
    question: dict[str, Any],
    domain: dict[str, str],
    answer: dict[str, Any] | None,
) -> dict[str, Any]:
    key = answer.get("code", "") if answer else "absent"
    doc: dict[str, Any] = {
        "resourceType": "Observation",
        "id": _id("obs", response["id"], question["code"], key),
        **_common(response, labels),
        "status": "final",
        "category": [
            {"coding": [{"system": _OBS_CATEGORY, "code": "survey", "display": "Survey"}]},
            {"coding": [_SDOH]},
            {"coding": [domain]},
        ],
        "code": {"coding": [{k: v for k, v in question.items() if v}]},
        "derivedFrom": [{"reference": f"QuestionnaireResponse/{response['id']}"}],
    }
    doc["meta"] = {**doc.get("meta", {}), "profile": [_PROFILE_OBS]}
    if response.get("encounter"):
        doc["encounter"] = response["encounter"]
    if response.get("authored"):
        doc["effectiveDateTime"] = response["authored"]
    if response.get("author"):
        doc["performer"] = [response["author"]]
    if answer is not None:
        doc["valueCodeableConcept"] = {"coding": [answer]}
    else:
        doc["dataAbsentReason"] = _ABSENT
    return doc


def _condition(
    response: dict[str, Any],
    labels: list[dict[str, Any]],
    concern_domain: dict[str, str],
    codes: tuple[dict[str, str], ...],
    evidence: list[str],
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "Condition",
        "id": _id("condition", response["id"], concern_domain["code"]),
        **_common(response, labels),
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "unconfirmed",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": _CONDITION_CATEGORY,
                        "code": "health-concern",
                        "display": "Health Concern",
                    }
                ]
            },
            {"coding": [_SDOH]},
            {"coding": [concern_domain]},
        ],
        "code": {"coding": list(codes), "text": concern_domain.get("display", "")},
        "evidence": [{"detail": [{"reference": r} for r in evidence]}],
    }
    doc["meta"] = {**doc.get("meta", {}), "profile": [_PROFILE_CONDITION]}
    if response.get("authored"):
        doc["onsetDateTime"] = response["authored"]
        doc["recordedDate"] = response["authored"]
    if response.get("author"):
        doc["asserter"] = response["author"]
    return doc


def derive(
    session: Session, response: dict[str, Any], sdoh: SdohMap
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the SDOH Observations, the health concerns) of one response (pure apart from reading
    the Questionnaire's item codes)."""
    labels = privacy.labels_of(response)
    questions = _question_codes(session, str(response.get("questionnaire", "")))
    observations: list[dict[str, Any]] = []
    positive: dict[str, tuple[dict[str, str], tuple[dict[str, str], ...], list[str]]] = {}
    given = _items(response.get("item", []))
    asked = {str(i.get("linkId")) for i in given}
    unanswered = [{"linkId": link} for link in questions if link not in asked]  # absent items
    for item in [*given, *unanswered]:
        link = str(item.get("linkId", ""))
        question = questions.get(link) or {"system": _LOINC, "code": link.lstrip("/")}
        domain = sdoh.domain(str(question.get("code")))
        if domain is None:
            continue
        answers = [
            a["valueCoding"] for a in item.get("answer", [])[:_MAX_ANSWERS] if a.get("valueCoding")
        ]
        for answer in answers or [None]:
            obs = _observation(response, labels, question, domain, answer)
            observations.append(obs)
            concern = (
                sdoh.concern(str(question["code"]), answer.get("code", "")) if answer else None
            )
            if concern is not None:
                entry = positive.setdefault(
                    concern.domain["code"], (concern.domain, concern.codes, [])
                )
                entry[2].append(f"Observation/{obs['id']}")
    conditions = [
        _condition(response, labels, domain, codes, evidence)
        for domain, codes, evidence in positive.values()
    ]
    return observations, conditions


def _retract(session: Session, caller: Caller, doc: dict[str, Any]) -> None:
    if doc["resourceType"] == "Condition":
        status = (doc.get("verificationStatus") or {}).get("coding", [])
        if any(c.get("code") == "entered-in-error" for c in status):
            return
        changed = {k: v for k, v in doc.items() if k != "clinicalStatus"}  # con-5
        changed["verificationStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "entered-in-error",
                }
            ]
        }
    elif doc.get("status") == "entered-in-error":
        return
    else:
        changed = {**doc, "status": "entered-in-error"}
    svc.update(session, doc["resourceType"], doc["id"], changed, caller)


def _earlier(session: Session, response_id: str) -> list[dict[str, Any]]:
    """What this response derived before: its SDOH Observations, and the concerns they evidence."""
    ref = f"QuestionnaireResponse/{response_id}"
    observations = [
        o
        for o in lookup.search(session, "Observation", [("derived-from", ref)])
        if _PROFILE_OBS in (o.get("meta") or {}).get("profile", [])
    ]
    refs = [f"Observation/{o['id']}" for o in observations][:100]
    concerns = (
        lookup.search(session, "Condition", [("evidence-detail", ",".join(refs))]) if refs else []
    )
    return [
        *observations,
        *(c for c in concerns if _PROFILE_CONDITION in (c.get("meta") or {}).get("profile", [])),
    ]


def on_response(event: WriteEvent, stored: StoredResource | None) -> None:
    gone = stored is None or stored.deleted
    response = (event.before.content if event.before else {}) if gone else stored.content  # type: ignore[union-attr]
    if not response.get("id"):
        return
    sdoh = sdoh_map_for(event.session, str(response.get("questionnaire", "")))
    if sdoh is None:
        return
    if gone or response.get("status") not in _SCORED:
        if gone or response.get("status") == "entered-in-error":
            for doc in _earlier(event.session, response["id"]):
                _retract(event.session, event.caller, doc)
        return
    if not (response.get("subject") or {}).get("reference"):
        return
    observations, conditions = derive(event.session, response, sdoh)
    for doc in [*observations, *conditions]:
        svc.update(event.session, doc["resourceType"], doc["id"], doc, event.caller)
    kept = {d["id"] for d in [*observations, *conditions]}
    for doc in _earlier(event.session, response["id"]):
        if doc["id"] not in kept:
            _retract(event.session, event.caller, doc)
