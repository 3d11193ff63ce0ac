"""Pure label and consent logic."""

from __future__ import annotations

import pytest

from fhir_gateway.security._consent import grants_of
from fhir_gateway.security._labels import condition_labels, is_substance_use

ICD = "http://hl7.org/fhir/sid/icd-10-cm"


def _codes(code: str, *, part2: bool = True, system: str = ICD) -> set[str]:
    condition = {
        "resourceType": "Condition",
        "code": {"coding": [{"system": system, "code": code}]},
    }
    return {lb["code"] for lb in condition_labels(condition, part2=part2)}


@pytest.mark.parametrize("code", ["F10.20", "F11", "F19.9", "f12.10", "F1520"])
def test_substance_use_from_a_part2_sender_is_r_eth_part2_psy(code):  # type: ignore[no-untyped-def]
    assert is_substance_use(code)
    assert _codes(code) == {"R", "ETH", "42CFRPart2", "PSY"}


def test_substance_use_from_another_sender_is_eth_and_psy_only():  # type: ignore[no-untyped-def]
    assert _codes("F10.20", part2=False) == {"ETH", "PSY"}


@pytest.mark.parametrize("code", ["F17.210", "F32.2", "F20.0", "F09"])
def test_tobacco_and_other_mental_health_codes_are_psy(code):  # type: ignore[no-untyped-def]
    assert _codes(code) == {"PSY"}


def test_non_mental_health_and_non_icd_codes_carry_no_label():  # type: ignore[no-untyped-def]
    assert _codes("I10") == set()
    assert _codes("F10.20", system="http://snomed.info/sct") == set()
    assert _codes("F10.20", system="http://hl7.org/fhir/sid/icd-10") == {
        "R",
        "ETH",
        "42CFRPart2",
        "PSY",
    }


def _consent(**provision: object) -> dict:
    return {
        "resourceType": "Consent",
        "status": "active",
        "patient": {"reference": "Patient/p1"},
        "provision": {
            "type": "permit",
            "actor": [{"reference": {"reference": "Organization/a"}}],
            **provision,
        },
    }


def test_an_active_permit_grants_its_organizations():  # type: ignore[no-untyped-def]
    grants = grants_of(_consent(period={"start": "2026-01-01", "end": "2026-12-31"}))
    assert [(g.organization, g.patient_id) for g in grants] == [("Organization/a", "p1")]
    assert grants[0].starts is not None and grants[0].ends is not None and grants[0].ends.day == 1


def test_inactive_denied_or_wrong_purpose_consents_grant_nothing():  # type: ignore[no-untyped-def]
    assert grants_of({**_consent(), "status": "inactive"}) == []
    denied = _consent(
        provision=[{"type": "deny", "actor": [{"reference": {"reference": "Organization/a"}}]}]
    )
    assert grants_of(denied) == []
    research = _consent(
        purpose=[{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH"}]
    )
    assert grants_of(research) == []
    treatment = _consent(
        purpose=[{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}]
    )
    assert len(grants_of(treatment)) == 1


def test_only_organizations_count_as_recipients():  # type: ignore[no-untyped-def]
    consent = _consent(actor=[{"reference": {"reference": "Practitioner/x"}}])
    assert grants_of(consent) == []
