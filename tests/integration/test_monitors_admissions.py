"""Readmission and crisis alerts from real ADT messages through the intake (St Mary's, Chicago).
Jane Doe is discharged on 2025-03-10 14:00 CDT with an active plan (auto mode)."""

from __future__ import annotations

from careplan_helpers import adt, validate_r4b
from monitor_helpers import Monitored, visit

FLAG_PRIORITY = "http://hl7.org/fhir/StructureDefinition/flag-priority"


def priority(flag: dict) -> str:
    return next(
        e["valueCodeableConcept"]["coding"][0]["code"]
        for e in flag["extension"]
        if e["url"] == FLAG_PRIORITY
    )


def test_inpatient_admission_on_day_30_flags_tells_the_care_team_and_holds_the_plan(
    monitored: Monitored,
) -> None:
    plan = monitored.discharge()
    assert plan["status"] == "active"
    monitored.send(
        visit("A01", "I", when="20250409230000", control="ADM-1")
    )  # 9 April, late evening: day 30
    [flag] = monitored.flags("readmission")
    assert flag["status"] == "active" and flag["subject"]["reference"] == monitored.patient()
    assert "day 30 after the discharge of 2025-03-10" in flag["code"]["text"]
    [message] = monitored.communications("readmission")
    assert message["recipient"] == plan["careTeam"]  # the plan's care team hears of it
    assert message["about"][0]["reference"] == f"Flag/{flag['id']}"
    held = monitored.gw.read(f"CarePlan/{plan['id']}")
    assert held["status"] == "on-hold" and "Readmitted" in held["note"][-1]["text"]
    for doc in (flag, message, held):
        validate_r4b(doc)


def test_admission_on_day_31_is_not_a_readmission(monitored: Monitored) -> None:
    plan = monitored.discharge()
    monitored.send(
        visit("A01", "I", when="20250410000100", control="ADM-1")
    )  # 10 April 00:01: day 31
    assert monitored.flags() == [] and monitored.communications("readmission") == []
    assert monitored.gw.read(f"CarePlan/{plan['id']}")["status"] == "active"


def test_emergency_visit_is_a_crisis_alert_of_the_highest_priority(monitored: Monitored) -> None:
    plan = monitored.discharge()
    monitored.send(visit("A04", "E", when="20250312020000", control="ED-1"))
    [flag] = monitored.flags("crisis")
    assert priority(flag) == "PH" and flag["category"][0]["coding"][0]["code"] == "safety"
    [message] = monitored.communications("crisis")
    assert message["priority"] == "stat"
    assert {"reference": "Organization/care-coordination"} in message["recipient"]
    assert monitored.flags("readmission") == []
    assert (
        monitored.gw.read(f"CarePlan/{plan['id']}")["status"] == "active"
    )  # a crisis does not hold the plan


def test_outpatient_visit_is_a_follow_up_not_a_readmission(monitored: Monitored) -> None:
    plan = monitored.discharge()
    monitored.send(visit("A04", "O", when="20250314100000", control="OP-1"))
    assert monitored.flags() == []
    assert monitored.gw.read(f"CarePlan/{plan['id']}")["status"] == "active"


def test_outpatient_turned_inpatient_by_a06_is_a_readmission(monitored: Monitored) -> None:
    monitored.discharge()
    monitored.send(visit("A04", "O", when="20250314100000", control="OP-1"))
    monitored.send(visit("A06", "I", when="20250314120000", control="OP-2", start="20250314100000"))
    [flag] = monitored.flags("readmission")
    assert "day 4 after" in flag["code"]["text"]


def test_a_resent_admission_and_an_update_raise_one_alert(monitored: Monitored) -> None:
    monitored.discharge()
    admit = visit("A01", "I", when="20250320080000", control="ADM-1")
    monitored.send(admit)
    monitored.send(admit)  # re-sent: a duplicate in the inbox
    monitored.send(
        visit("A08", "I", when="20250320090000", control="ADM-2", start="20250320080000")
    )
    assert len(monitored.flags("readmission")) == 1
    assert len(monitored.communications("readmission")) == 1


def test_cancel_admit_withdraws_the_flag_and_resumes_the_plan(monitored: Monitored) -> None:
    plan = monitored.discharge()
    monitored.send(visit("A01", "I", when="20250320080000", control="ADM-1"))
    monitored.send(
        visit("A11", "I", when="20250320093000", control="ADM-2", start="20250320080000")
    )
    [flag] = monitored.flags("readmission")
    assert flag["status"] == "entered-in-error" and "end" in flag["period"]
    assert monitored.gw.read(f"CarePlan/{plan['id']}")["status"] == "active"
    [withdrawn] = monitored.communications("withdrawn")
    assert withdrawn["recipient"] == plan["careTeam"]
    assert [f for f in monitored.flags() if f["status"] == "active"] == []


def test_cancelled_emergency_visit_withdraws_the_crisis_alert(monitored: Monitored) -> None:
    monitored.discharge()
    monitored.send(visit("A04", "E", when="20250312020000", control="ED-1"))
    monitored.send(visit("A11", "E", when="20250312030000", control="ED-2", start="20250312020000"))
    assert [f["status"] for f in monitored.flags("crisis")] == ["entered-in-error"]


def test_readmission_discharge_makes_the_revised_plan_and_ends_the_flag(
    monitored: Monitored,
) -> None:
    first = monitored.discharge()
    monitored.send(visit("A01", "I", when="20250320080000", control="ADM-1"))
    monitored.send(
        adt(control="ADM-2", visit="V200", admitted="20250320080000", discharged="20250327120000"),
        "20250327120000",
    )
    assert (
        monitored.gw.read(f"CarePlan/{first['id']}")["status"] == "revoked"
    )  # replaced by the revised plan
    revised = monitored.plan()
    assert revised["id"] != first["id"] and revised["status"] == "active"
    assert [f["status"] for f in monitored.flags("readmission")] == ["inactive"]


def test_same_day_readmission_counts_as_day_0(monitored: Monitored) -> None:
    monitored.discharge()
    monitored.send(visit("A01", "I", when="20250310200000", control="ADM-1"))
    [flag] = monitored.flags("readmission")
    assert "day 0 after" in flag["code"]["text"]


def test_in_review_mode_the_draft_plan_is_flagged_but_stays_draft(reviewed: Monitored) -> None:
    plan = reviewed.discharge()
    assert plan["status"] == "draft"
    reviewed.send(visit("A01", "I", when="20250320080000", control="ADM-1"))
    assert len(reviewed.flags("readmission")) == 1
    assert reviewed.gw.read(f"CarePlan/{plan['id']}")["status"] == "draft"


def test_a_patient_without_a_plan_raises_nothing(monitored: Monitored) -> None:
    monitored.send(
        adt(diagnoses=(("J18.9", "Pneumonia"),), service="MED", discharged="20250310140000")
    )
    assert monitored.gw.plans() == []
    monitored.send(visit("A01", "I", when="20250320080000", control="ADM-1"))
    assert monitored.flags() == []


def test_a_fhir_admit_of_an_inpatient_encounter_is_a_readmission(monitored: Monitored) -> None:
    monitored.discharge()
    monitored.at("20250321090000")
    encounter = {
        "resourceType": "Encounter",
        "id": "fhir-admit",
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": monitored.patient()},
        "period": {"start": "2025-03-21T09:00:00-05:00"},
    }
    response = monitored.gw.client.put(
        "/Encounter/fhir-admit", json=encounter, headers={"Content-Type": "application/fhir+json"}
    )
    assert response.status_code == 201, response.text
    [flag] = monitored.flags("readmission")
    assert flag["encounter"]["reference"] == "Encounter/fhir-admit"
