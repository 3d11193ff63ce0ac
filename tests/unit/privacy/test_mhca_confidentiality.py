"""Mental Healthcare Act 2017, s23: an MHCA patient's information is released only under the
exceptions of s23(2), one test each; s25: the patient's own records, less what a professional
withheld with a recorded reason, with the notice of the right to apply to the Board."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fhir_gateway.privacy import (
    MHCA_SYSTEM,
    patient_records,
    release_decision,
    release_problems,
    withholding_problems,
)

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CONDITION, TASK = "Condition/dx", "Task/t1"
REPRESENTATIVE = "RelatedPerson/lakshmi"
CLINIC = "Organization/blr-manasa-clinic"  # owns the patient's psychiatry referral
HOUSING = "Organization/blr-aashraya-housing"  # not in the patient's care


def release(code: str, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "Consent",
        "id": f"rel-{code}",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IDSCL"}
                ]
            },
            {"coding": [{"system": MHCA_SYSTEM, "code": code}]},
        ],
        "patient": {"reference": "Patient/p"},
        "dateTime": "2026-11-30",
        "performer": [{"reference": "Practitioner/rao"}],
        "policyRule": {"text": "Threats against a named neighbour, reported to the police"},
        "provision": {
            "type": "permit",
            "period": {"start": "2026-11-30", "end": "2026-12-31"},
            "actor": [{"reference": {"reference": HOUSING}}],
            "data": [{"meaning": "instance", "reference": {"reference": CONDITION}}],
        },
    }
    doc.update(changes)
    return doc


def decide(
    recipient: str, resource: str = CONDITION, *releases: dict[str, Any], at: datetime = AT
) -> Any:
    return release_decision(
        recipient=recipient,
        resource=resource,
        at=at,
        representative=REPRESENTATIVE,
        care_team=("Organization/care-coordination", CLINIC),
        releases=releases,
    )


def test_without_an_exception_nothing_is_released():  # type: ignore[no-untyped-def]
    decision = decide(HOUSING)
    assert not decision and decision.exception is None
    assert not decide("RelatedPerson/ravi")  # a relative who is not the representative


def test_s23_2_a_the_nominated_representative_receives_it():  # type: ignore[no-untyped-def]
    decision = decide(REPRESENTATIVE)
    assert decision and decision.exception == "s23-2-a"


def test_s23_2_b_those_providing_care_and_treatment_receive_it():  # type: ignore[no-untyped-def]
    decision = decide(CLINIC, TASK)
    assert decision and decision.exception == "s23-2-b"


def test_s23_2_c_a_release_to_protect_another_person_from_harm():  # type: ignore[no-untyped-def]
    decision = decide(HOUSING, CONDITION, release("s23-2-c"))
    assert (
        decision and decision.exception == "s23-2-c" and decision.release == "Consent/rel-s23-2-c"
    )
    assert not decide(HOUSING, CONDITION, release("s23-2-c", policyRule={}))  # no recorded reason


def test_s23_2_d_only_the_information_necessary_against_the_harm_is_released():  # type: ignore[no-untyped-def]
    assert decide(HOUSING, CONDITION, release("s23-2-c"))
    beyond = decide(HOUSING, TASK, release("s23-2-c"))  # not what the release names
    assert not beyond and "only what it names" in beyond.reason
    unnamed = release("s23-2-c", provision={**release("s23-2-c")["provision"], "data": []})
    assert (
        "Consent.provision.data",
        "the information the release covers (provision.data)",
    ) in release_problems(unnamed)
    assert not decide(HOUSING, CONDITION, unnamed)


def test_s23_2_e_only_what_is_necessary_to_prevent_threat_to_life():  # type: ignore[no-untyped-def]
    life = release(
        "s23-2-e", policyRule={"text": "Overdose reported by the family; ambulance crew"}
    )
    decision = decide(HOUSING, CONDITION, life)
    assert decision and decision.exception == "s23-2-e"
    assert not decide(HOUSING, TASK, life)


def test_s23_2_f_upon_an_order_of_the_board_or_a_court_which_is_recorded():  # type: ignore[no-untyped-def]
    order = release(
        "s23-2-f", policyRule={}, sourceReference={"reference": "DocumentReference/board-order-17"}
    )
    decision = decide(HOUSING, CONDITION, order)
    assert decision and decision.exception == "s23-2-f"
    without_order = release("s23-2-f", policyRule={})
    assert (
        "Consent.sourceReference",
        "the order itself (sourceReference or sourceAttachment)",
    ) in release_problems(without_order)
    assert not decide(HOUSING, CONDITION, without_order)


def test_s23_2_g_in_the_interests_of_public_safety_and_security():  # type: ignore[no-untyped-def]
    safety = release(
        "s23-2-g",
        policyRule={"text": "Request of the Commissioner of Police, Bengaluru, FIR 112/2026"},
    )
    decision = decide(HOUSING, CONDITION, safety)
    assert decision and decision.exception == "s23-2-g"
    assert not decide(HOUSING, CONDITION, release("s23-2-g", status="inactive"))  # withdrawn
    assert not decide(HOUSING, CONDITION, safety, at=datetime(2027, 1, 5, tzinfo=UTC))  # expired


def test_a_and_b_are_never_recorded_as_releases():  # type: ignore[no-untyped-def]
    [(path, why)] = release_problems(release("s23-2-b"))
    assert path == "Consent.category" and "not recorded" in why


# -- s25 -----------------------------------------------------------------------------------------


def withholding(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "Consent",
        "id": "wh1",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": MHCA_SYSTEM, "code": "s25-2-b"}]}],
        "patient": {"reference": "Patient/p"},
        "dateTime": "2026-11-28",
        "performer": [{"reference": "Practitioner/rao", "display": "Dr Meera Rao"}],
        "policyRule": {"text": "Names the relative who reported the threats"},
        "provision": {
            "type": "deny",
            "data": [{"meaning": "instance", "reference": {"reference": CONDITION}}],
        },
    }
    doc.update(changes)
    return doc


RECORDS = [
    {"resourceType": "Patient", "id": "p"},
    {"resourceType": "Condition", "id": "dx"},
    {"resourceType": "Encounter", "id": "e1"},
]


def test_s25_the_patient_receives_the_records_less_what_was_withheld_with_the_notice():  # type: ignore[no-untyped-def]
    released, [notice] = patient_records(RECORDS, [withholding()], at=AT)
    assert [r["id"] for r in released] == ["p", "e1"]
    assert "Dr Meera Rao" in notice and "Names the relative" in notice
    assert "apply to the Mental Health Review Board" in notice and "s25(3)" in notice


def test_s25_a_withholding_without_its_reason_withholds_nothing():  # type: ignore[no-untyped-def]
    incomplete = withholding(policyRule={}, performer=[])
    assert {p for p, _ in withholding_problems(incomplete)} == {
        "Consent.performer",
        "Consent.policyRule.text",
    }
    released, notices = patient_records(RECORDS, [incomplete], at=AT)
    assert len(released) == 3 and notices == []
