"""Partner matching compares normalised language tags on both sides: the patient's (PID-15 or
FHIR, however coded) and the directory's HealthcareService.communication."""

from __future__ import annotations

from datetime import date
from typing import Any

from fhir_gateway.careplans._partners import Directory, _partner, eligible, patient_language

THERAPY = ("http://example.org/referral-service", "therapy-intake")
ORGS = {
    "Organization/esperanza": {
        "resourceType": "Organization",
        "id": "esperanza",
        "name": "Esperanza",
    }
}


def service(*codes: str) -> dict[str, Any]:
    return {
        "resourceType": "HealthcareService",
        "id": "esperanza-therapy",
        "providedBy": {"reference": "Organization/esperanza"},
        "type": [{"coding": [{"system": THERAPY[0], "code": THERAPY[1]}]}],
        "communication": [{"coding": [{"system": "urn:ietf:bcp:47", "code": c}]} for c in codes],
    }


def patient(*codings: dict[str, str], text: str | None = None) -> dict[str, Any]:
    language: dict[str, Any] = {"coding": list(codings)} if codings else {}
    if text:
        language["text"] = text
    return {"resourceType": "Patient", "communication": [{"language": language, "preferred": True}]}


def matches(svc: dict[str, Any], pat: dict[str, Any]) -> bool:
    partner = _partner(svc, ORGS, {})
    assert partner is not None
    found = eligible(
        Directory((partner,)),
        {THERAPY},
        address=None,
        language=patient_language(pat),
        on=date(2025, 3, 10),
    )
    return bool(found)


def test_iso639_2_codes_on_either_side_match_the_bcp47_tag() -> None:
    assert matches(service("es"), patient({"system": "urn:ietf:bcp:47", "code": "spa"}))
    assert matches(service("spa"), patient({"system": "urn:ietf:bcp:47", "code": "es"}))
    assert matches(
        service("es-MX"),
        patient({"system": "http://terminology.hl7.org/CodeSystem/v2-0296", "code": "SPA"}),
    )
    assert matches(service("es"), patient(text="Spanish"))
    assert not matches(service("es"), patient({"system": "urn:ietf:bcp:47", "code": "eng"}))


def test_unrecognised_patient_language_matches_no_partner_rather_than_english() -> None:
    assert patient_language(patient({"system": "urn:example:local", "code": "ZZ9"})) == "zz9"
    assert not matches(service("en"), patient({"system": "urn:example:local", "code": "ZZ9"}))
    assert patient_language({"resourceType": "Patient"}) == "en"  # none stated: English
