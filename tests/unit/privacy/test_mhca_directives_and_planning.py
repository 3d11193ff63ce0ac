"""Mental Healthcare Act 2017: advance directives (s5–13) and who takes part in discharge planning
(s98), as the privacy module reads them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fhir_gateway.privacy import (
    MHCA_SYSTEM,
    advance_directive_searches,
    advance_directives,
    directive_findings,
    discharge_planning_gaps,
    has_capacity,
    preferred_contacts,
    representatives_named,
    unreadable_directives,
)

AT = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SERVICE = "http://fhir-gateway.org/fhir/CodeSystem/referral-service"
DEPOT = {
    "coding": [{"system": SERVICE, "code": "long-acting-medication-review"}],
    "text": "Long-acting antipsychotic review",
}
CASE_MANAGER = "Organization/care-coordination"


def _role(code: str) -> dict[str, Any]:
    return {"coding": [{"system": MHCA_SYSTEM, "code": code}]}


def directive(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "Consent",
        "id": "ad1",
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "adr"}
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "42348-3"}]}],
        "patient": {"reference": "Patient/p"},
        "dateTime": "2025-06-01",
        "provision": {
            "type": "permit",
            "actor": [
                {
                    "role": _role("nominated-representative"),
                    "reference": {"reference": "RelatedPerson/anil"},
                },
                {
                    "role": _role("preferred-contact"),
                    "reference": {"reference": "RelatedPerson/lakshmi"},
                },
            ],
            "provision": [{"type": "deny", "code": [{**DEPOT, "text": "depot injections"}]}],
        },
    }
    doc.update(changes)
    return doc


def request(priority: str = "routine", code: dict[str, Any] = DEPOT) -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "id": "sr1", "priority": priority, "code": code}


def capacity(value: bool, when: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": MHCA_SYSTEM, "code": "capacity"}]},
        "effectiveDateTime": when,
        "valueBoolean": value,
    }


def test_an_activity_the_directive_refuses_is_found_for_the_psychiatrist_while_capacity_is_lacking():  # type: ignore[no-untyped-def]
    [finding] = directive_findings([directive()], request(), capacity=False, at=AT)
    assert finding.directive == "Consent/ad1" and finding.refused == "depot injections"
    assert "psychiatrist's decision" in finding.text and "Not removed" in finding.text


def test_the_directive_does_not_apply_to_emergency_treatment():  # type: ignore[no-untyped-def]
    assert directive_findings([directive()], request(priority="stat"), capacity=False, at=AT) == []


def test_the_directive_does_not_apply_while_the_patient_has_capacity():  # type: ignore[no-untyped-def]
    latest = has_capacity([capacity(False, "2026-11-01"), capacity(True, "2026-11-20")])
    assert latest is True
    assert directive_findings([directive()], request(), capacity=latest, at=AT) == []
    assert directive_findings(
        [directive()], request(), capacity=None, at=AT
    )  # not assessed: it may apply


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "inactive"},
        {"provision": {**directive()["provision"], "period": {"end": "2026-01-01"}}},
    ],
    ids=["revoked (s8)", "expired"],
)
def test_a_directive_out_of_force_finds_nothing(changes):  # type: ignore[no-untyped-def]
    assert directive_findings([directive(**changes)], request(), capacity=False, at=AT) == []


def test_other_activities_and_what_the_patient_wants_are_no_conflict():  # type: ignore[no-untyped-def]
    other = {"coding": [{"system": SERVICE, "code": "therapy-intake"}]}
    assert directive_findings([directive()], request(code=other), capacity=False, at=AT) == []


def test_a_written_directive_the_gateway_cannot_read_goes_to_the_psychiatrist():  # type: ignore[no-untyped-def]
    scanned = {
        "resourceType": "DocumentReference",
        "id": "scan",
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "42348-3"}]},
    }
    [finding] = unreadable_directives([scanned, directive()], capacity=None, at=AT)
    assert finding.directive == "DocumentReference/scan"
    assert unreadable_directives([scanned], capacity=True, at=AT) == []


def test_the_directive_names_representatives_and_contacts_and_the_page_can_find_them():  # type: ignore[no-untyped-def]
    old = directive(id="ad0", dateTime="2020-01-01", status="inactive")
    assert [
        d["id"] for d in advance_directives([old, {"resourceType": "Consent"}, directive()], AT)
    ] == ["ad1", "ad0"]
    assert representatives_named([directive()], AT) == ["RelatedPerson/anil"]
    assert preferred_contacts([directive(), old], AT) == ["RelatedPerson/lakshmi"]
    searches = advance_directive_searches("Patient/p")
    assert (
        "Consent",
        [
            ("patient", "Patient/p"),
            ("scope", "http://terminology.hl7.org/CodeSystem/consentscope|adr"),
        ],
    ) in searches


# -- s98 -----------------------------------------------------------------------------------------

V3 = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"


def _people() -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "RelatedPerson",
            "id": "lakshmi",
            "relationship": [{"coding": [{"system": V3, "code": "MTH"}]}],
        },
        {
            "resourceType": "RelatedPerson",
            "id": "ravi",
            "relationship": [
                {"coding": [{"system": V3, "code": "BRO"}]},
                {"coding": [{"system": MHCA_SYSTEM, "code": "nominated-representative"}]},
            ],
        },
    ]


def _plan(*contributors: str) -> dict[str, Any]:
    return {
        "resourceType": "CarePlan",
        "subject": {"reference": "Patient/p"},
        "contributor": [{"reference": c} for c in contributors],
    }


def test_a_plan_made_without_the_s98_participants_has_every_gap():  # type: ignore[no-untyped-def]
    assert discharge_planning_gaps(_plan(), _people(), case_manager=CASE_MANAGER) == [
        "the patient",
        "the nominated representative (RelatedPerson/ravi)",
        "the family member or care-giver the patient will live with",
        "the psychiatrist who will be responsible for care after discharge",
    ]
    # the case manager is not the continuing psychiatrist
    assert (
        "the psychiatrist"
        in discharge_planning_gaps(_plan(CASE_MANAGER), _people(), case_manager=CASE_MANAGER)[-1]
    )


def test_a_plan_made_with_them_has_none():  # type: ignore[no-untyped-def]
    plan = _plan("Patient/p", "RelatedPerson/ravi", "RelatedPerson/lakshmi", "Practitioner/rao")
    assert discharge_planning_gaps(plan, _people(), case_manager=CASE_MANAGER) == []


def test_the_person_the_patient_will_live_with_is_the_one_coded_so():  # type: ignore[no-untyped-def]
    people = _people()
    people[0]["relationship"].append({"coding": [{"system": MHCA_SYSTEM, "code": "resides-with"}]})
    plan = _plan(
        "Patient/p", "RelatedPerson/ravi", "Practitioner/rao"
    )  # ravi is not who she lives with
    assert discharge_planning_gaps(plan, people, case_manager=CASE_MANAGER) == [
        "the family member or care-giver the patient will live with"
    ]


def test_without_a_confirmed_representative_that_gap_stands():  # type: ignore[no-untyped-def]
    people = _people()[:1]
    plan = _plan("Patient/p", "RelatedPerson/lakshmi", "Practitioner/rao")
    assert discharge_planning_gaps(plan, people, case_manager=CASE_MANAGER) == [
        "the nominated representative (none is confirmed yet)"
    ]
