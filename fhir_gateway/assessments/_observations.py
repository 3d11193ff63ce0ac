"""The Observations a scored response becomes (pure): one per extracted item, ``derivedFrom`` the
response, at its ``authored`` time, for its subject and encounter, by its author, with its
security labels; a value, or a ``dataAbsentReason`` saying which questions were unanswered."""

from __future__ import annotations

from typing import Any

from fhir_gateway.assessments._codes import DATA_ABSENT, LOINC, SURVEY
from fhir_gateway.assessments._instruments import Instrument
from fhir_gateway.privacy import labels_of

__all__ = ["observation", "missing_text"]


def missing_text(instrument: Instrument, missing: list[str]) -> str:
    return "Not answered: " + "; ".join(instrument.label(link) for link in missing)


def _code(item: dict[str, Any], link: str) -> dict[str, Any]:
    codings = [c for c in item.get("code", []) or [] if isinstance(c, dict)]
    loinc = [c for c in codings if c.get("system") == LOINC] or codings
    text = str(item.get("text") or (loinc[0].get("display") if loinc else link))
    return {"coding": loinc[:1], "text": text} if loinc else {"text": text}


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int):
        return {"valueInteger": value}
    if isinstance(value, float):
        return {"valueQuantity": {"value": value}}
    if isinstance(value, dict) and ("code" in value or "system" in value):
        coding = {k: value[k] for k in ("system", "code", "display") if k in value}
        concept: dict[str, Any] = {"coding": [coding]}
        if coding.get("display"):  # an answer sent as a bare code has no words to repeat
            concept["text"] = coding["display"]
        return {"valueCodeableConcept": concept}
    return {"valueString": str(value)}


def observation(
    instrument: Instrument,
    response: dict[str, Any],
    link: str,
    value: Any,
    missing: list[str],
    obs_id: str,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "category": [{"coding": [SURVEY]}],
        "code": _code(instrument.items[link], link),
        "subject": response.get("subject"),
        "derivedFrom": [{"reference": f"QuestionnaireResponse/{response['id']}"}],
    }
    labels = labels_of(response)
    if labels:
        doc["meta"] = {"security": labels}
    for field, target in (("encounter", "encounter"), ("authored", "effectiveDateTime")):
        if response.get(field):
            doc[target] = response[field]
    if response.get("author"):
        doc["performer"] = [response["author"]]
    if value is None:
        doc["dataAbsentReason"] = {
            "coding": [{"system": DATA_ABSENT, "code": "unknown", "display": "Unknown"}],
            "text": missing_text(instrument, missing),
        }
    else:
        doc.update(_value(value))
    return {k: v for k, v in doc.items() if v is not None}
