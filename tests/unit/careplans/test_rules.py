"""The applicability rules of the shipped templates, evaluated with fhirpathpy over a discharge
context (no database): which diagnoses, services and circumstances make which referrals."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fhir_gateway.careplans import DischargeContext, draft_plan
from fhir_gateway.careplans._seed import SHIPPED_TEMPLATES
from fhir_gateway.careplans._templates import TEMPLATE_TYPES, TemplateSet, read_directory

CM = "http://hl7.org/fhir/sid/icd-10-cm"
WHO = "http://hl7.org/fhir/sid/icd-10"


@pytest.fixture(scope="module")
def templates() -> TemplateSet:
    shipped = TemplateSet()
    for doc in read_directory(SHIPPED_TEMPLATES, TEMPLATE_TYPES):
        shipped.add(doc)
    return shipped


def condition(code: str, system: str = CM, n: int = 0) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": f"c{n}-{code}",
        "code": {"coding": [{"system": system, "code": code}]},
    }


def context(
    *codes: str,
    service: str = "MED",
    system: str = CM,
    patient: dict[str, Any] | None = None,
    disposition: str | None = None,
    related: bool = False,
) -> DischargeContext:
    conditions = [condition(c, system, i) for i, c in enumerate(codes)]
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": "e",
        "status": "finished",
        "serviceType": {"coding": [{"code": service}]},
    }
    if disposition:
        encounter["hospitalization"] = {"dischargeDisposition": {"coding": [{"code": disposition}]}}
    return DischargeContext(
        patient=patient or {"resourceType": "Patient", "id": "p"},
        encounter=encounter,
        conditions=conditions,
        principal=conditions[0] if conditions else None,
        related_persons=[{"resourceType": "RelatedPerson", "id": "r"}] if related else [],
        discharged_at=datetime(2025, 3, 10, 14, tzinfo=ZoneInfo("America/Chicago")),
    )


def activities(templates: TemplateSet, ctx: DischargeContext) -> set[str]:
    return set(draft_plan(templates, ctx, templates.discharge_plans()).activities)


@pytest.mark.parametrize("code", ["F01.50", "F20.9", "F32.A", "F99", "F32.2", "F3320", "f43.10"])
def test_mental_disorder_as_principal_diagnosis_applies(templates: TemplateSet, code: str) -> None:
    assert "psychiatry-follow-up" in activities(templates, context(code))


@pytest.mark.parametrize("code", ["F17.210", "F17", "J18.9", "G30.9", "F00.0", "Z59.0"])
def test_not_a_psychiatric_principal_diagnosis(templates: TemplateSet, code: str) -> None:
    assert activities(templates, context(code)) == set()


def test_who_icd10_codes_match_like_icd10_cm(templates: TemplateSet) -> None:
    assert "depression-monitoring" in activities(templates, context("F32.2", system=WHO))


def test_codes_of_other_systems_do_not_match(templates: TemplateSet) -> None:
    assert activities(templates, context("F32.2", system="http://snomed.info/sct")) == set()


def test_a_mental_disorder_that_is_not_principal_does_not_apply(templates: TemplateSet) -> None:
    assert activities(templates, context("J18.9", "F32.2")) == set()


@pytest.mark.parametrize(
    "code",
    [
        "X71.0XXA",
        "X78.9",
        "X83.8XXA",
        "T14.91XA",
        "T39.012A",
        "T36.0X2A",
        "T51.0X2A",
        "T65.822A",
        "R45.851",
    ],
)
def test_any_self_harm_or_suicidality_code_applies_and_adds_the_72_hour_call(
    templates: TemplateSet, code: str
) -> None:
    # secondary to a medical principal diagnosis, from a medical ward: self-harm applies anywhere
    found = activities(templates, context("S61.419A", code))
    assert {
        "psychiatry-follow-up",
        "crisis-follow-up-call",
        "means-restriction-counselling",
    } <= found


@pytest.mark.parametrize(
    "code", ["X70", "X84", "T39.011A", "T39.013A", "T66", "T35.0X2A", "R45.85", "R45.86"]
)
def test_not_self_harm(templates: TemplateSet, code: str) -> None:
    assert activities(templates, context("S61.419A", code)) == set()


@pytest.mark.parametrize(
    ("code", "expected", "absent"),
    [
        (
            "F20.0",
            {"long-acting-medication-review", "supported-employment"},
            {"mood-stabiliser-monitoring"},
        ),
        ("F29", {"long-acting-medication-review"}, set()),
        ("F30.10", {"mood-stabiliser-monitoring"}, {"depression-monitoring"}),
        ("F31.9", {"mood-stabiliser-monitoring"}, set()),
        ("F32.9", {"depression-monitoring"}, {"mood-stabiliser-monitoring"}),
        ("F33.0", {"depression-monitoring"}, set()),
        ("F40.10", {"trauma-focused-therapy"}, set()),
        ("F43.10", {"trauma-focused-therapy"}, set()),
        ("F44.4", set(), {"trauma-focused-therapy"}),
        ("F10.20", {"addiction-treatment", "peer-recovery-support"}, set()),
        ("F19.20", {"addiction-treatment"}, set()),
        ("F34.1", set(), {"depression-monitoring", "mood-stabiliser-monitoring"}),
    ],
)
def test_condition_groups(
    templates: TemplateSet, code: str, expected: set[str], absent: set[str]
) -> None:
    found = activities(templates, context(code))
    assert expected <= found and not absent & found


def test_tobacco_is_not_substance_use(templates: TemplateSet) -> None:
    found = activities(templates, context("F32.2", "F17.210"))
    assert "addiction-treatment" not in found


def test_substance_use_referrals_are_labelled_and_need_consent(templates: TemplateSet) -> None:
    draft = draft_plan(templates, context("F32.2", "F11.20"), templates.discharge_plans())
    assert draft.activities["addiction-treatment"].sensitivities == {"substance-use"}
    assert draft.activities["addiction-treatment"].requires_consent
    assert draft.activities["psychiatry-follow-up"].sensitivities == set()
    assert not draft.activities["psychiatry-follow-up"].requires_consent


@pytest.mark.parametrize("code", ["Z59.0", "Z59.00", "Z59.01", "Z59.02"])
def test_homelessness_codes_by_prefix(templates: TemplateSet, code: str) -> None:
    assert "housing-support" in activities(templates, context("F32.2", code))


@pytest.mark.parametrize("code", ["Z59.1", "Z59.8", "Z56.1"])
def test_neighbouring_z_codes_do_not(templates: TemplateSet, code: str) -> None:
    found = activities(templates, context("F32.2", code))
    assert "housing-support" not in found and "vocational-training" not in found


def test_unemployment_and_next_of_kin(templates: TemplateSet) -> None:
    found = activities(templates, context("F32.2", "Z56.0", related=True))
    assert {"vocational-training", "family-psychoeducation", "peer-support-group"} <= found
    assert "family-psychoeducation" not in activities(templates, context("F32.2"))


@pytest.mark.parametrize("line", ["HOMELESS", "No fixed abode", "NFA", "unhoused shelter"])
def test_an_address_marked_homeless(templates: TemplateSet, line: str) -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "address": [{"line": [line], "city": "Springfield"}],
    }
    assert "housing-support" in activities(templates, context("F32.2", patient=patient))


def test_an_old_homeless_address_does_not_count(templates: TemplateSet) -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "address": [{"use": "old", "line": ["HOMELESS"]}, {"use": "home", "line": ["1 Elm St"]}],
    }
    assert "housing-support" not in activities(templates, context("F32.2", patient=patient))


@pytest.mark.parametrize("service", ["PSY", "psych", "BH"])
def test_psychiatric_service_without_a_psychiatric_code(
    templates: TemplateSet, service: str
) -> None:
    assert "psychiatry-follow-up" in activities(templates, context("R41.0", service=service))


@pytest.mark.parametrize(
    ("patient", "disposition"),
    [
        ({"resourceType": "Patient", "id": "p", "deceasedBoolean": True}, None),
        (
            {"resourceType": "Patient", "id": "p", "deceasedDateTime": "2025-03-10T13:00:00-05:00"},
            None,
        ),
        (None, "exp"),
        (None, "20"),
    ],
)
def test_no_plan_for_a_patient_who_died(
    templates: TemplateSet, patient: dict[str, Any] | None, disposition: str | None
) -> None:
    ctx = context("F32.2", patient=patient, disposition=disposition)
    if disposition == "20":
        ctx.encounter["hospitalization"]["dischargeDisposition"]["coding"][0]["system"] = (  # type: ignore[index]
            "http://terminology.hl7.org/CodeSystem/v2-0112"
        )
    assert activities(templates, ctx) == set()


def test_a_living_patient_with_deceased_false_gets_a_plan(templates: TemplateSet) -> None:
    patient = {"resourceType": "Patient", "id": "p", "deceasedBoolean": False}
    assert activities(templates, context("F32.2", patient=patient))


def test_reasons_are_the_conditions_that_called_for_each_group(templates: TemplateSet) -> None:
    draft = draft_plan(templates, context("F32.2", "F10.20", "Z59.0"), templates.discharge_plans())
    ids = {
        key: [c["code"]["coding"][0]["code"] for c in a.reasons]
        for key, a in draft.activities.items()
    }
    assert ids["addiction-treatment"] == ["F10.20"]
    assert ids["housing-support"] == ["Z59.0"]
    assert ids["psychiatry-follow-up"] == ["F32.2", "F10.20"]
    assert [p["id"] for p in draft.plans] == [
        "psychiatric-discharge",
        "depression",
        "substance-use",
        "social-needs",
    ]
