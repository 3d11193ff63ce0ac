"""The care-plan engine behind the real intake: HL7 v2 discharges in, stored plans out.

St Mary's (zone America/Chicago) discharges Jane Doe on 2025-03-10 at 14:00 local time; day 7
after discharge is 2025-03-17, so the HEDIS FUH window ends 2025-03-17T23:59:59-05:00 (CDT began
on 2025-03-09)."""

from __future__ import annotations

import pytest
from careplan_helpers import Gateway, adt, validate_r4b

PART2 = {"R", "ETH", "42CFRPart2"}


def labels(resource: dict) -> set[str]:
    return {s["code"] for s in resource.get("meta", {}).get("security", [])}


def test_psychiatric_discharge_makes_one_linked_plan_in_review(gateway: Gateway) -> None:
    gateway.send(
        adt(diagnoses=(("F32.2", "Major depressive disorder"), ("Z59.00", "Homelessness")))
    )
    plan = gateway.plan()
    encounter = gateway.all("Encounter")[0]
    patient = gateway.all("Patient")[0]
    assert plan["status"] == "draft" and plan["intent"] == "plan"
    assert plan["encounter"]["reference"] == f"Encounter/{encounter['id']}"
    assert plan["subject"]["reference"] == f"Patient/{patient['id']}"
    assert plan["period"]["start"] == "2025-03-10"
    assert plan["category"][0]["coding"][0]["code"] == "assess-plan"
    assert "Jane Q Doe" in plan["text"]["div"]
    requests = gateway.requests_of(plan)
    assert set(requests) == {
        "Psychiatry follow-up visit within 7 days",
        "Medication reconciliation and adherence support",
        "Safety and crisis plan review",
        "Psychotherapy intake within 14 days",
        "Depression symptom monitoring (PHQ-9)",
        "Housing support",
        "Family psychoeducation",
        "Peer support group",
    }
    goals = [gateway.read(g["reference"]) for g in plan["goal"]]
    assert {g["description"]["text"]: g["target"][0]["dueDate"] for g in goals} == {
        "Symptoms stabilised": "2025-04-09",
        "Medication taken as prescribed": "2025-04-09",
        "First follow-up appointment attended": "2025-03-17",
        "Back to work or study": "2025-09-10",
        "Stable housing": "2025-09-10",
        "Relationships rebuilt": "2026-03-10",
    }
    assert {g["lifecycleStatus"] for g in goals} == {"proposed"}
    for request in requests.values():
        task = gateway.task_of(request)
        assert request["status"] == "draft" and request["intent"] == "order"
        assert request["basedOn"] == [{"reference": f"CarePlan/{plan['id']}"}]
        assert task["status"] == "draft" and task["intent"] == "order"
        assert task["code"]["coding"][0]["code"] == "fulfill"
        assert task["for"]["reference"] == f"Patient/{patient['id']}"
        assert task["requester"]["reference"] == "Organization/care-coordination"
        assert task["restriction"]["period"]["end"] == request["occurrencePeriod"]["end"]
        assert "PSY" in labels(request) and "PSY" in labels(task)


def test_the_plan_is_stored_once_with_its_measurements(gateway: Gateway) -> None:
    """The measurement schedule's Tasks are part of the plan as the engine stores it (issue 21):
    one version of the CarePlan, not a second one that adds them after."""
    gateway.send(adt(diagnoses=(("F32.2", "Major depressive disorder"),)))
    plan = gateway.plan()
    assert plan["meta"]["versionId"] == "1"
    linked = [a["reference"]["reference"] for a in plan["activity"]]
    measurements = [t for t in gateway.all("Task") if t["code"]["coding"][0]["code"] != "fulfill"]
    assert len(measurements) >= 2  # the schedule's PHQ-9 and GAD-7 occasions
    for task in measurements:
        assert f"Task/{task['id']}" in linked
        assert task["basedOn"] == [{"reference": f"CarePlan/{plan['id']}"}]
        assert task["status"] == "draft"  # the plan is in review
        assert task["meta"]["versionId"] == "1"
        assert "PSY" in labels(task)  # as the treating referral, drafted with it


def test_deadlines_count_calendar_days_in_the_facility_zone(gateway: Gateway) -> None:
    gateway.send(adt())
    requests = gateway.requests_of(gateway.plan())
    follow_up = requests["Psychiatry follow-up visit within 7 days"]
    assert follow_up["occurrencePeriod"] == {
        "start": "2025-03-11T00:00:00-05:00",
        "end": "2025-03-17T23:59:59-05:00",
    }
    assert (
        requests["Psychotherapy intake within 14 days"]["occurrencePeriod"]["end"]
        == "2025-03-24T23:59:59-05:00"
    )
    assert gateway.task_of(follow_up)["restriction"]["period"]["end"] == "2025-03-17T23:59:59-05:00"


def test_a_late_evening_discharge_counts_from_the_local_day(gateway: Gateway) -> None:
    # 23:30 in Chicago is already the next day in UTC; day 7 still counts from 10 March.
    gateway.send(adt(discharged="20250310233000"))
    follow_up = gateway.requests_of(gateway.plan())["Psychiatry follow-up visit within 7 days"]
    assert follow_up["occurrencePeriod"]["end"] == "2025-03-17T23:59:59-05:00"


def test_goals_pursued_by_each_request(gateway: Gateway) -> None:
    gateway.send(adt())
    plan = gateway.plan()
    follow_up = gateway.requests_of(plan)["Psychiatry follow-up visit within 7 days"]
    linked = {
        gateway.read(e["valueReference"]["reference"])["description"]["text"]
        for e in follow_up["extension"]
    }
    assert linked == {"First follow-up appointment attended", "Symptoms stabilised"}
    reasons = [
        gateway.read(r["reference"])["code"]["coding"][0]["code"]
        for r in follow_up["reasonReference"]
    ]
    assert reasons == ["F32.2"]
    assert {a["reference"] for a in plan["addresses"]} == {
        r["reference"] for r in follow_up["reasonReference"]
    }


def test_care_team_holds_patient_case_manager_psychiatrist_and_family(gateway: Gateway) -> None:
    gateway.send(adt())
    plan = gateway.plan()
    team = gateway.read(plan["careTeam"][0]["reference"])
    members = {
        p["role"][0]["coding"][0]["display"]: p["member"]["reference"] for p in team["participant"]
    }
    practitioner = gateway.all("Practitioner")[0]
    relative = gateway.all("RelatedPerson")[0]
    assert members == {
        "Patient": plan["subject"]["reference"],
        "Case manager": "Organization/care-coordination",
        "Psychiatrist": f"Practitioner/{practitioner['id']}",
        "Caregiver": f"RelatedPerson/{relative['id']}",
    }


def test_owners_are_chosen_by_service_area_language_and_availability(gateway: Gateway) -> None:
    gateway.send(adt())
    requests = gateway.requests_of(gateway.plan())
    owners = {
        title: gateway.task_of(r).get("owner", {}).get("reference") for title, r in requests.items()
    }
    assert owners["Psychiatry follow-up visit within 7 days"] == "Organization/springfield-cmhc"
    # Lincoln Therapy is not accepting new clients and Clinica Esperanza works in Spanish only.
    assert owners["Psychotherapy intake within 14 days"] == "Organization/springfield-cmhc"
    assert owners["Peer support group"] == "Organization/nami-central-il"
    assert (
        requests["Peer support group"]["performer"][0]["reference"]
        == "Organization/nami-central-il"
    )


def test_spanish_speaking_patient_gets_spanish_speaking_partners(gateway: Gateway) -> None:
    gateway.send(adt(language="es^Spanish^ISO6391"))
    requests = gateway.requests_of(gateway.plan())
    owners = {
        title: gateway.task_of(r).get("owner", {}).get("reference") for title, r in requests.items()
    }
    assert owners["Psychotherapy intake within 14 days"] in (
        "Organization/clinica-esperanza",
        "Organization/springfield-cmhc",
    )
    assert owners["Peer support group"] is None  # NAMI runs its groups in English only
    assert "performer" not in requests["Peer support group"]


def test_patient_outside_every_coverage_area_gets_tasks_without_owner(gateway: Gateway) -> None:
    gateway.send(adt(address="1 Lake Shore Dr^^Chicago^IL^60601^USA^H"))
    requests = gateway.requests_of(gateway.plan())
    follow_up = gateway.task_of(requests["Psychiatry follow-up visit within 7 days"])
    assert "owner" not in follow_up  # Springfield only: the case manager sees it unassigned
    assert (
        gateway.task_of(requests["Peer support group"])["owner"]["reference"]
        == "Organization/nami-central-il"
    )


def test_every_emitted_resource_validates_as_r4b(gateway: Gateway) -> None:
    gateway.send(
        adt(
            diagnoses=(
                ("F20.0", "Paranoid schizophrenia"),
                ("F10.20", "Alcohol dependence"),
                ("X78.0XXA", "Self-harm by sharp glass"),
                ("Z56.0", "Unemployment"),
            )
        )
    )
    for res_type in ("CarePlan", "Goal", "ServiceRequest", "Task", "CareTeam"):
        for resource in gateway.all(res_type):
            validate_r4b(resource)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("F20.0", {"Long-acting antipsychotic review", "Supported employment (IPS)"}),
        ("F31.2", {"Mood stabiliser review and level monitoring"}),
        ("F33.1", {"Depression symptom monitoring (PHQ-9)"}),
        ("F43.10", {"CBT or trauma-focused therapy"}),
        ("F10.20", {"Addiction treatment programme", "Peer recovery support"}),
        ("X78.0XXA", {"Follow-up call within 72 hours", "Counselling on access to lethal means"}),
        ("R45.851", {"Follow-up call within 72 hours", "Counselling on access to lethal means"}),
    ],
)
def test_condition_groups_add_their_referrals(
    gateway: Gateway, code: str, expected: set[str]
) -> None:
    gateway.send(adt(diagnoses=((code, "diagnosis"),), next_of_kin=False))
    titles = set(gateway.requests_of(gateway.plan()))
    base = {
        "Psychiatry follow-up visit within 7 days",
        "Medication reconciliation and adherence support",
        "Safety and crisis plan review",
        "Psychotherapy intake within 14 days",
        "Peer support group",
    }
    assert titles == base | expected


def test_self_harm_follow_up_call_is_due_72_hours_after_discharge(gateway: Gateway) -> None:
    gateway.send(adt(diagnoses=(("T39.012A", "Poisoning by aspirin, intentional self-harm"),)))
    call = gateway.requests_of(gateway.plan())["Follow-up call within 72 hours"]
    assert call["occurrencePeriod"] == {
        "start": "2025-03-10T14:00:00-05:00",
        "end": "2025-03-13T14:00:00-05:00",
    }
    assert call["priority"] == "urgent"


def test_social_needs_from_codes_and_next_of_kin(gateway: Gateway) -> None:
    gateway.send(
        adt(diagnoses=(("F32.1", "Depression"), ("Z56.0", "Unemployment")), next_of_kin=False)
    )
    titles = set(gateway.requests_of(gateway.plan()))
    assert "Vocational training" in titles
    assert "Family psychoeducation" not in titles and "Housing support" not in titles


def test_an_address_marked_homeless_calls_for_housing_support(gateway: Gateway) -> None:
    gateway.send(adt(address="HOMELESS^^Springfield^IL^62701^USA"))
    housing = gateway.requests_of(gateway.plan())["Housing support"]
    assert housing["category"][0]["coding"][0]["code"] == "homelessness"
    assert housing["meta"]["profile"] == [
        "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/SDOHCC-ServiceRequest"
    ]
    task = gateway.task_of(housing)
    assert task["meta"]["profile"] == [
        "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/SDOHCC-TaskForReferralManagement"
    ]
    assert task["owner"]["reference"] == "Organization/hope-housing"


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(
            adt(diagnoses=(("J18.9", "Pneumonia"),), service="MED"), id="pneumonia-medical-ward"
        ),
        pytest.param(
            adt(diagnoses=(("J18.9", "Pneumonia"), ("F32.1", "Depression")), service="MED"),
            id="depression-not-principal",
        ),
        pytest.param(adt(disposition="20"), id="expired-disposition"),
        pytest.param(adt(deceased="Y"), id="pid-30-deceased"),
        pytest.param(
            adt(diagnoses=(("F17.210", "Nicotine dependence"),), service="MED"), id="tobacco-only"
        ),
    ],
)
def test_no_plan(gateway: Gateway, message: bytes) -> None:
    gateway.send(message)
    assert gateway.counts() == dict.fromkeys(
        ("CarePlan", "Goal", "ServiceRequest", "Task", "CareTeam"), 0
    )


def test_principal_diagnosis_is_rank_1_not_the_first_dg1(gateway: Gateway) -> None:
    gateway.send(
        adt(
            diagnoses=(("J18.9", "Pneumonia"), ("F32.1", "Depression")),
            ranks=("2", "1"),
            service="MED",
        )
    )
    assert gateway.plan()["addresses"][0]["display"] == "Depression"


@pytest.mark.parametrize("service", ["PSY", "BEH", "Behavioral Health", "psychiatric"])
def test_psychiatric_service_alone_makes_a_plan(gateway: Gateway, service: str) -> None:
    """PV1-10 as hospitals send it: codes of their own and plain text (the real-world corpus)."""
    gateway.send(adt(diagnoses=(("R41.0", "Disorientation"),), service=service, next_of_kin=False))
    assert len(gateway.requests_of(gateway.plan())) == 5  # the base plan and a peer support group


def test_resent_discharge_changes_nothing(gateway: Gateway) -> None:
    gateway.send(adt(control="MSG-1"))
    before = gateway.versions()
    gateway.send(adt(control="MSG-2"))  # the hospital sends the same discharge again, new MSH-10
    assert gateway.versions() == before


def test_a08_after_discharge_updates_demographics_without_a_second_plan(gateway: Gateway) -> None:
    gateway.send(adt(control="MSG-1"))
    before = gateway.versions()
    gateway.send(adt("A08", control="MSG-2", family="Smith", sent="20250311080000"))
    assert gateway.versions() == before
    assert gateway.all("Patient")[0]["name"][0]["family"] == "Smith"


def test_a13_revokes_the_plan_and_cancels_its_referrals(gateway: Gateway) -> None:
    gateway.send(adt(control="MSG-1"))
    plan = gateway.plan()
    gateway.send(adt("A13", control="MSG-2", discharged="", sent="20250311080000"))
    revoked = gateway.read(f"CarePlan/{plan['id']}")
    assert revoked["status"] == "revoked"
    for request in gateway.requests_of(revoked).values():
        assert request["status"] == "revoked"
        task = gateway.task_of(request)
        assert task["status"] == "cancelled"
        assert task["statusReason"]["text"] == "Discharge cancelled (A13)"
    assert {gateway.read(g["reference"])["lifecycleStatus"] for g in revoked["goal"]} == {
        "cancelled"
    }
    # discharged again after all: a new plan, with new resources
    gateway.send(adt(control="MSG-3", discharged="20250312100000"))
    assert gateway.plan()["id"] != plan["id"]


def test_readmission_plan_replaces_the_previous_one(gateway: Gateway) -> None:
    gateway.send(
        adt(
            control="MSG-1", visit="V1", diagnoses=(("F32.2", "Depression"), ("Z59.00", "Homeless"))
        )
    )
    first = gateway.plan()
    gateway.client.put(
        f"/CarePlan/{first['id']}", json={**first, "status": "active"}
    ).raise_for_status()
    first_requests = gateway.requests_of(gateway.read(f"CarePlan/{first['id']}"))
    accepted = gateway.task_of(first_requests["Psychiatry follow-up visit within 7 days"])
    gateway.client.put(
        f"/Task/{accepted['id']}", json={**accepted, "status": "accepted"}
    ).raise_for_status()
    housing_task = gateway.task_of(first_requests["Housing support"])

    gateway.send(
        adt(
            control="MSG-2",
            visit="V2",
            admitted="20250401090000",
            discharged="20250405110000",
            diagnoses=(("F32.2", "Depression"),),
        )
    )
    second = gateway.plan()
    old = gateway.read(f"CarePlan/{first['id']}")
    assert old["status"] == "revoked"
    assert second["replaces"] == [{"reference": f"CarePlan/{first['id']}"}]
    activities = {a["reference"]["reference"] for a in second["activity"]}
    follow_up_ref = (
        f"ServiceRequest/{first_requests['Psychiatry follow-up visit within 7 days']['id']}"
    )
    assert follow_up_ref in activities  # accepted: carried over, not issued again
    assert gateway.read(f"Task/{accepted['id']}")["status"] == "accepted"
    titles = [gateway.read(r)["code"]["text"] for r in activities]
    assert titles.count("Psychiatry follow-up visit within 7 days") == 1
    # not yet accepted: cancelled, and issued again only where the new plan still calls for it
    assert gateway.read(f"Task/{housing_task['id']}")["status"] == "cancelled"
    assert "Housing support" not in titles
    therapy_old = first_requests["Psychotherapy intake within 14 days"]
    assert gateway.read(f"ServiceRequest/{therapy_old['id']}")["status"] == "revoked"
    therapy_new = gateway.requests_of(second)["Psychotherapy intake within 14 days"]
    assert therapy_new["id"] != therapy_old["id"]
    assert therapy_new["occurrencePeriod"]["end"] == "2025-04-19T23:59:59-05:00"


# -- review, approval, 42 CFR Part 2 -----------------------------------------------------------


def test_approving_the_plan_sends_its_referrals(gateway: Gateway) -> None:
    gateway.send(adt(diagnoses=(("F32.2", "Depression"), ("F10.20", "Alcohol dependence"))))
    plan = gateway.plan()
    response = gateway.client.put(f"/CarePlan/{plan['id']}", json={**plan, "status": "active"})
    assert response.status_code == 200
    requests = gateway.requests_of(gateway.read(f"CarePlan/{plan['id']}"))
    statuses = {title: gateway.task_of(r)["status"] for title, r in requests.items()}
    assert (
        statuses.pop("Addiction treatment programme") == "draft"
    )  # waits for the patient's consent
    assert statuses.pop("Peer recovery support") == "draft"
    assert set(statuses.values()) == {"requested"}
    assert {r["status"] for r in requests.values()} == {"active"}
    assert {gateway.read(g["reference"])["lifecycleStatus"] for g in plan["goal"]} == {"active"}
    waiting = gateway.task_of(requests["Addiction treatment programme"])
    assert waiting["businessStatus"]["coding"][0]["code"] == "awaiting-consent"


def test_approval_by_json_patch_works_too(gateway: Gateway) -> None:
    gateway.send(adt())
    plan = gateway.plan()
    patch = [{"op": "replace", "path": "/status", "value": "active"}]
    response = gateway.client.patch(
        f"/CarePlan/{plan['id']}",
        json=patch,
        headers={"content-type": "application/json-patch+json"},
    )
    assert response.status_code == 200
    follow_up = gateway.requests_of(plan)["Psychiatry follow-up visit within 7 days"]
    assert gateway.task_of(follow_up)["status"] == "requested"


def test_substance_use_resources_carry_part2_labels(gateway: Gateway) -> None:
    gateway.send(adt(diagnoses=(("F32.2", "Depression"), ("F11.20", "Opioid dependence"))))
    plan = gateway.plan()
    requests = gateway.requests_of(plan)
    for title in ("Addiction treatment programme", "Peer recovery support"):
        assert PART2 <= labels(requests[title]) and PART2 <= labels(
            gateway.task_of(requests[title])
        )
    assert not PART2 & labels(requests["Psychiatry follow-up visit within 7 days"])
    assert PART2 <= labels(plan)  # its narrative names the addiction referral


def test_consent_releases_the_addiction_referral(auto_gateway: Gateway) -> None:
    auto_gateway.send(adt(diagnoses=(("F10.20", "Alcohol dependence"),)))
    plan = auto_gateway.plan()
    assert plan["status"] == "active"
    requests = auto_gateway.requests_of(plan)
    addiction = auto_gateway.task_of(requests["Addiction treatment programme"])
    assert (
        addiction["status"] == "draft"
        and addiction["owner"]["reference"] == "Organization/prairie-recovery"
    )
    assert (
        auto_gateway.task_of(requests["Psychiatry follow-up visit within 7 days"])["status"]
        == "requested"
    )
    consent = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": plan["subject"],
        "provision": {
            "type": "permit",
            "actor": [
                {
                    "role": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "IRCP",
                            }
                        ]
                    },
                    "reference": {"reference": "Organization/prairie-recovery"},
                }
            ],
        },
    }
    assert auto_gateway.client.post("/Consent", json=consent).status_code == 201
    released = auto_gateway.read(f"Task/{addiction['id']}")
    assert released["status"] == "requested" and "businessStatus" not in released


def test_auto_mode_sends_referrals_at_once(auto_gateway: Gateway) -> None:
    auto_gateway.send(adt())
    plan = auto_gateway.plan()
    assert plan["status"] == "active"
    requests = auto_gateway.requests_of(plan)
    assert {r["status"] for r in requests.values()} == {"active"}
    assert {auto_gateway.task_of(r)["status"] for r in requests.values()} == {"requested"}
    assert auto_gateway.read(plan["careTeam"][0]["reference"])["status"] == "active"
