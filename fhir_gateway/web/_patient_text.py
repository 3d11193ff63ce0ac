"""Words for what the patient page shows: a visit by its kind and dates, and text written by other
parts of the gateway with each ``Type/id`` in it replaced by the name of what it points to (an
alert's text names the stay it is about as a reference; a person reads "the hospital stay of …")."""

from __future__ import annotations

import re
from typing import Any

from fhir_gateway.fhir.types import RESOURCE_TYPES
from fhir_gateway.web._patient_reader import PatientReader, codings

__all__ = ["with_names", "visit_kind", "visit_words", "INPATIENT", "EMERGENCY"]

INPATIENT = frozenset({"IMP", "ACUTE", "NONAC"})
EMERGENCY = frozenset({"EMER"})
_KINDS = {
    "IMP": "Hospital stay",
    "ACUTE": "Hospital stay",
    "NONAC": "Hospital stay",
    "EMER": "Emergency department visit",
    "OBSENC": "Observation stay",
    "PRENC": "Pre-admission visit",
    "SS": "Day surgery",
    "AMB": "Outpatient visit",
    "HH": "Home visit",
    "VR": "Virtual visit",
    "FLD": "Field visit",
}
_REFERENCE = re.compile(r"\b([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})\b")
_MAX_REPLACED = 20  # a text names a few things; more is not a person's text


def visit_kind(encounter: dict[str, Any]) -> str:
    code = str((encounter.get("class") or {}).get("code") or "")
    return _KINDS.get(code, (encounter.get("class") or {}).get("display") or "Visit")


def visit_words(reader: PatientReader, encounter: dict[str, Any]) -> str:
    """ "the hospital stay from Sat 1 Mar to Mon 10 Mar 2025" """
    period = encounter.get("period") or {}
    kind = visit_kind(encounter).lower()
    start, end = period.get("start"), period.get("end")
    if start and end:
        return f"the {kind} from {reader.clock.day(start)} to {reader.clock.day(end)}"
    if start:
        return f"the {kind} of {reader.clock.day(start)}"
    return f"a {kind}"


def _name(reader: PatientReader, res_type: str, res_id: str) -> str:
    reference = f"{res_type}/{res_id}"
    found = reader.names.resource(reference)
    if res_type == "Encounter" and found is not None:
        return visit_words(reader, found)
    if res_type == "CarePlan" and found is not None:
        return str(found.get("title") or "the care plan")
    if res_type in ("Task", "ServiceRequest") and found is not None:
        return _referral_words(reader, found)
    return reader.names.of(reference, missing="a record you may not see")


def _referral_words(reader: PatientReader, doc: dict[str, Any]) -> str:
    request = doc if doc.get("resourceType") == "ServiceRequest" else None
    if request is None:
        request = reader.names.resource((doc.get("focus") or {}).get("reference")) or {}
    code = request.get("code") or {}
    words = code.get("text") or next((c.get("display") for c in codings(code)), None)
    return f"the referral for {words}" if words else "the referral"


def with_names(reader: PatientReader, text: str) -> str:
    """``text`` with every ``Type/id`` replaced by the name of its resource as this reader may see
    it (an unknown or hidden one by a neutral phrase, never the reference)."""
    found = [m for m in _REFERENCE.finditer(text) if m[1] in RESOURCE_TYPES][:_MAX_REPLACED]
    out, last = [], 0
    for match in found:
        out += [text[last : match.start()], _name(reader, match[1], match[2])]
        last = match.end()
    return "".join([*out, text[last:]])
