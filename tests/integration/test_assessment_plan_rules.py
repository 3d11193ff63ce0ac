"""Screening results revise the discharged patient's plan (mappings/assessments/
PlanDefinition-assessment-response.json): Jane Doe (F32.2) is discharged from St Mary's on
2025-03-10 and screened on 2025-03-12 at 09:30 Chicago time; the results are posted through REST
as the instruments store them (scored Observations derived from the response)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from careplan_helpers import validate_r4b
from planrule_helpers import NOW, Screened, answer, item, screened

from fhir_gateway import assessments, monitors
from fhir_gateway.context import SYSTEM
from fhir_gateway.store.db import Database
from fhir_gateway.web._display import Display
from fhir_gateway.web._worklist import Filters, worklist

HIGH, MODERATE, LOW = "LA9193-9", "LA6751-7", "LA9194-7"
SAFETY, CALL = (
    "Safety-plan review within 24 hours of the screening",
    "Follow-up call within 72 hours of the screening",
)
EXPEDITED = "Expedited psychiatry review within 72 hours of the screening"


@pytest.fixture
def auto(database: Database, database_url: str) -> Iterator[Screened]:
    yield from screened(database, database_url, "auto")


@pytest.fixture
def review(database: Database, database_url: str) -> Iterator[Screened]:
    yield from screened(database, database_url, "review")


def deadline(task: dict) -> str:
    return task["restriction"]["period"]["end"]


def test_high_c_ssrs_risk_alerts_at_once_and_adds_two_routed_tasks_to_the_active_plan(
    auto: Screened,
) -> None:
    plan = auto.discharge()
    assert plan is not None and plan["status"] == "active"
    auto.clock.now = NOW
    result = auto.result("93374-7", value=answer(HIGH, "High risk"))

    [flag] = auto.flags("suicide-risk")
    assert flag["status"] == "active" and flag["subject"]["reference"] == auto.patient
    assert (
        "PH" in str(flag["extension"][0]) and flag["category"][0]["coding"][0]["code"] == "safety"
    )
    assert "C-SSRS" in flag["code"]["text"] and "Added to the plan" in flag["code"]["text"]
    assert "(screening of Wed 12 Mar 2025, 9:30 am (UTC-05:00))" in flag["code"]["text"]
    assert flag["id"] in {f["id"] for f in auto.gw.database.read(monitors.alerts)}
    top = auto.gw.database.read(
        worklist, SYSTEM, Filters(), Display.for_settings(auto.gw.settings), auto.gw.settings
    )
    assert (top.rows[0].kind, top.rows[0].patient) == ("suicide-risk", auto.patient)  # first
    [message] = [
        c
        for c in auto.gw.all("Communication", ("subject", auto.patient))
        if {"reference": f"Flag/{flag['id']}"} in c["about"]
    ]
    assert message["priority"] == "stat"
    assert {"reference": "Organization/care-coordination"} in message["recipient"]

    added = auto.added(plan)
    assert set(added) == {SAFETY, CALL}
    revised = auto.gw.read(f"CarePlan/{plan['id']}")
    assert int(revised["meta"]["versionId"]) > int(plan["meta"]["versionId"])
    assert "Revised after" in revised["note"][-1]["text"]
    for title, hours_end in (
        (SAFETY, "2025-03-13T09:30:00-05:00"),
        (CALL, "2025-03-15T09:30:00-05:00"),
    ):
        request = added[title]
        task = auto.gw.task_of(request)
        assert request["status"] == "active" and task["status"] == "requested"
        assert task["owner"]["reference"].startswith("Organization/")  # routed to a partner
        assert deadline(task) == hours_end  # counted from the screening, not the discharge
        assert {"reference": f"Observation/{result['id']}"} in request["reasonReference"]
        for doc in (request, task):
            validate_r4b(doc)
    for doc in (flag, message, revised):
        validate_r4b(doc)


def test_the_same_response_scored_twice_adds_nothing_twice(auto: Screened) -> None:
    plan = auto.discharge()
    assert plan is not None
    auto.clock.now = NOW
    first = auto.result("93374-7", value=answer(HIGH))
    counts = auto.gw.counts()
    versions = auto.gw.read(f"CarePlan/{plan['id']}")["meta"]["versionId"]
    source = first["derivedFrom"][0]["reference"]
    auto.result("93374-7", value=answer(MODERATE), response=source)  # re-scored
    assert auto.gw.counts() == counts
    assert auto.gw.read(f"CarePlan/{plan['id']}")["meta"]["versionId"] == versions
    assert len(auto.flags("suicide-risk")) == 1


def test_negative_or_unanswered_results_change_nothing(auto: Screened) -> None:
    plan = auto.discharge()
    assert plan is not None
    auto.clock.now = NOW
    counts = auto.gw.counts()
    for code, value in (
        ("93374-7", answer(LOW)),  # C-SSRS: ideation without a method
        ("93374-7", answer("LA137-2")),  # none
        ("93374-7", None),  # incomplete: never taken as negative, nor as positive
        ("44260-8", answer("LA6568-5")),  # PHQ-9 item 9: not at all
        ("44260-8", None),  # item 9 unanswered
        ("44261-6", {"valueInteger": 19}),
        ("44261-6", None),
    ):
        auto.result(code, value=value)
    assert auto.gw.counts() == counts
    assert auto.flags("suicide-risk") == [] and auto.flags("plan-revision") == []


def test_phq9_item_9_above_zero_is_a_crisis_alert(auto: Screened) -> None:
    plan = auto.discharge()
    assert plan is not None
    auto.clock.now = NOW
    auto.result("44260-8", value=answer("LA6569-3", "Several days"))
    [flag] = auto.flags("suicide-risk")
    assert "PHQ-9 item 9" in flag["code"]["text"]
    assert set(auto.added(plan)) == {SAFETY, CALL}


def test_phq9_total_of_20_adds_an_expedited_psychiatry_review(auto: Screened) -> None:
    plan = auto.discharge()
    assert plan is not None
    auto.clock.now = NOW
    auto.result("44261-6", value={"valueInteger": 21})
    [request] = auto.added(plan).values()
    assert request["code"]["text"] == EXPEDITED
    task = auto.gw.task_of(request)
    assert task["status"] == "requested" and task["owner"]["reference"].startswith("Organization/")
    assert deadline(task) == "2025-03-15T09:30:00-05:00"
    assert auto.flags("suicide-risk") == []  # severity alone is not a crisis


def test_review_mode_alerts_at_once_and_holds_the_tasks_with_clocks_from_the_screening(
    review: Screened,
) -> None:
    plan = review.discharge()
    assert plan is not None and plan["status"] == "active"
    review.clock.now = NOW
    review.result("93374-7", value=answer(HIGH))
    [flag] = review.flags("suicide-risk")
    assert flag["status"] == "active" and "awaiting approval" in flag["code"]["text"]
    [work] = review.flags("plan-revision")
    assert work["status"] == "active" and "awaiting approval" in work["code"]["text"]
    added = review.added(plan)
    assert set(added) == {SAFETY, CALL}
    tasks = {t: review.gw.task_of(r) for t, r in added.items()}
    assert {r["status"] for r in added.values()} == {"draft"}
    assert {t["status"] for t in tasks.values()} == {"draft"}
    assert deadline(tasks[SAFETY]) == "2025-03-13T09:30:00-05:00"

    review.clock.advance(days=1)  # approved the next day, past the 24 hours
    request = added[SAFETY]
    put = review.gw.client.put(
        f"/ServiceRequest/{request['id']}", json={**request, "status": "active"}
    )
    assert put.status_code == 200, put.text
    task = review.gw.task_of(request)
    assert task["status"] == "requested" and task["owner"]["reference"].startswith("Organization/")
    assert deadline(task) == deadline(tasks[SAFETY])  # the clock never restarts at approval
    assert task["priority"] == "urgent"  # already late: it goes out at once
    assert review.gw.read(f"Flag/{work['id']}")["status"] == "active"  # the call still waits

    declined = {**added[CALL], "status": "revoked"}
    assert (
        review.gw.client.put(f"/ServiceRequest/{declined['id']}", json=declined).status_code == 200
    )
    assert review.gw.task_of(added[CALL])["status"] == "cancelled"  # never sent
    assert review.gw.read(f"Flag/{work['id']}")["status"] == "inactive"  # nothing waits now


def test_without_an_active_plan_only_the_alert_and_a_work_item(review: Screened) -> None:
    plan = review.discharge()
    assert plan is not None
    held = {**plan, "status": "on-hold"}  # readmitted, say: no active plan to revise
    assert review.gw.client.put(f"/CarePlan/{plan['id']}", json=held).status_code == 200
    plan = review.gw.read(f"CarePlan/{plan['id']}")
    review.clock.now = NOW
    counts = review.gw.counts()
    review.result("44260-8", value=answer("LA6571-9", "Nearly every day"))
    [flag] = review.flags("suicide-risk")
    assert "No active care plan" in flag["code"]["text"]
    [work] = review.flags("plan-revision")
    assert "no active care plan to revise" in work["code"]["text"]
    assert SAFETY in work["code"]["text"] and CALL in work["code"]["text"]  # what was not added
    assert review.gw.counts() == counts
    assert (
        review.gw.read(f"CarePlan/{plan['id']}")["meta"]["versionId"] == plan["meta"]["versionId"]
    )


@pytest.mark.slow  # secondary path; the inner loop keeps the clinical rules
def test_a_rule_edited_through_the_api_applies_to_the_next_result(auto: Screened) -> None:
    plan = auto.discharge()
    assert plan is not None
    auto.clock.now = NOW
    rules = auto.gw.read("PlanDefinition/assessment-response")
    for action in rules["action"]:
        if action["id"] == "phq-9-severe":
            action["condition"][0]["expression"]["expression"] = "%resource.value >= 15"
    assert auto.gw.client.put("/PlanDefinition/assessment-response", json=rules).status_code == 200
    auto.result("44261-6", value={"valueInteger": 16})
    assert set(auto.added(plan)) == {EXPEDITED}

    broken = {
        **rules,
        "action": [
            {
                **rules["action"][0],
                "condition": [
                    {
                        "kind": "applicability",
                        "expression": {
                            "language": "text/fhirpath",
                            "expression": "%resource.value >= (",
                        },
                    }
                ],
            }
        ],
    }
    response = auto.gw.client.put("/PlanDefinition/assessment-response", json=broken)
    assert response.status_code in (400, 422) and "FHIRPath" in response.text


AHC = "ahc-hrsn-core"
SDOHCC = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"


def codes(concept: dict) -> set[str]:
    return {c["code"] for c in concept["coding"]}


def test_a_housing_positive_ahc_hrsn_becomes_sdoh_data_and_a_routed_housing_referral(
    auto: Screened,
) -> None:
    plan = auto.discharge()
    assert plan is not None
    auto.clock.now = NOW
    response = auto.response(
        AHC,
        [
            item("/71802-3", "LA31995-6"),  # no steady place to live
            item("/88122-7", "LA28398-8"),  # food: never true
            item("/93030-5"),  # transportation: not answered
        ],
    )
    source = f"QuestionnaireResponse/{response['id']}"
    observations = {
        o["code"]["coding"][0]["code"]: o
        for o in auto.gw.all("Observation", ("derived-from", source))
    }
    assert {"71802-3", "88122-7", "93030-5"} <= set(observations)
    unanswered = set(observations) - {"71802-3", "88122-7"}  # with the Questionnaire: all it asks
    assert all("dataAbsentReason" in observations[c] for c in unanswered)
    housing = observations["71802-3"]
    assert {"survey", "sdoh", "housing-instability"} <= set().union(
        *(codes(c) for c in housing["category"])
    )
    assert housing["effectiveDateTime"] == response["authored"]
    assert codes(housing["valueCodeableConcept"]) == {"LA31995-6"}
    assert "dataAbsentReason" in observations["93030-5"]  # unanswered: neither way
    [concern] = auto.gw.all("Condition", ("evidence-detail", f"Observation/{housing['id']}"))
    assert {"health-concern", "sdoh", "homelessness"} <= set().union(
        *(codes(c) for c in concern["category"])
    )
    assert codes(concern["clinicalStatus"]) == {"active"}
    assert codes(concern["verificationStatus"]) == {"unconfirmed"}
    assert {"Z59.00", "32911000"} <= codes(concern["code"])
    assert len(auto.gw.all("Condition", ("category", f"{SDOHCC}|food-insecurity"))) == 0
    for doc in (housing, observations["93030-5"], concern):
        validate_r4b(doc)

    [request] = auto.added(plan).values()
    assert request["code"]["text"] == "Housing support"
    task = auto.gw.task_of(request)
    assert task["status"] == "requested"
    assert task["owner"]["reference"] == "Organization/hope-housing"  # the housing partner
    assert {"reference": f"Condition/{concern['id']}"} in request["reasonReference"]
    assert auto.flags("suicide-risk") == []


def test_a_negative_ahc_hrsn_records_the_answers_and_adds_nothing(auto: Screened) -> None:
    plan = auto.discharge()
    assert plan is not None
    auto.clock.now = NOW
    counts = auto.gw.counts()
    response = auto.response(
        AHC, [item("/71802-3", "LA31993-1"), item("/96778-6", "LA9-3"), item("/96779-4", "LA32-8")]
    )
    found = auto.gw.all("Observation", ("derived-from", f"QuestionnaireResponse/{response['id']}"))
    answered = [o for o in found if "valueCodeableConcept" in o]
    assert {o["code"]["coding"][0]["code"] for o in answered} == {"71802-3", "96778-6", "96779-4"}
    assert (
        auto.gw.all(
            "Condition",
            ("category", "http://hl7.org/fhir/us/core/CodeSystem/us-core-category|sdoh"),
        )
        == []
    )
    assert auto.gw.counts() == counts


@pytest.mark.slow  # secondary path; the inner loop keeps the clinical rules
def test_an_amended_response_withdraws_the_concern_it_no_longer_raises(auto: Screened) -> None:
    auto.discharge()
    auto.clock.now = NOW
    response = auto.response(AHC, [item("/88122-7", "LA6729-3")])  # food: sometimes true
    [concern] = auto.gw.all("Condition", ("category", f"{SDOHCC}|food-insecurity"))
    assert codes(concern["clinicalStatus"]) == {"active"}
    amended = {**response, "status": "amended", "item": [item("/88122-7", "LA28398-8")]}
    assert (
        auto.gw.client.put(f"/QuestionnaireResponse/{response['id']}", json=amended).status_code
        == 200
    )
    withdrawn = auto.gw.read(f"Condition/{concern['id']}")
    assert codes(withdrawn["verificationStatus"]) == {"entered-in-error"}
    assert "clinicalStatus" not in withdrawn  # con-5
    validate_r4b(withdrawn)

    mistaken = {
        **auto.gw.read(f"QuestionnaireResponse/{response['id']}"),
        "status": "entered-in-error",
    }
    assert (
        auto.gw.client.put(f"/QuestionnaireResponse/{response['id']}", json=mistaken).status_code
        == 200
    )
    derived = auto.gw.all(
        "Observation", ("derived-from", f"QuestionnaireResponse/{response['id']}")
    )
    assert derived and {o["status"] for o in derived} == {"entered-in-error"}


# -- end to end from the QuestionnaireResponse: the instruments (branch `instruments`) validate and
# score it into the Observations the rules read; until that branch is merged these are skipped.

needs_scoring = pytest.mark.skipif(
    not hasattr(assessments, "score_response"),
    reason="the instruments' scoring (assessments.score_response) is not merged yet",
)
YES, NO = "LA33-6", "LA32-8"


@needs_scoring
def test_a_positive_c_ssrs_response_alerts_and_adds_two_routed_tasks(auto: Screened) -> None:
    plan = auto.discharge()
    assert plan is not None
    auto.clock.now = NOW
    response = auto.response(
        "c-ssrs-screener",
        [
            item("/93246-7", YES),
            item("/93247-5", YES),
            item("/93248-3", YES),
            item("/93249-1", YES),  # intent: high risk
            item("/93250-9", NO),
            item("/93267-3", NO),
        ],
    )
    [flag] = auto.flags("suicide-risk")
    assert f"QuestionnaireResponse/{response['id']}" in str(flag["extension"])
    added = auto.added(plan)
    assert set(added) == {SAFETY, CALL}
    for request in added.values():
        task = auto.gw.task_of(request)
        assert task["status"] == "requested" and task["owner"]["reference"].startswith(
            "Organization/"
        )
    assert deadline(auto.gw.task_of(added[SAFETY])) == "2025-03-13T09:30:00-05:00"


@needs_scoring
def test_a_severe_phq9_response_adds_an_expedited_review_and_no_crisis_alert(
    auto: Screened,
) -> None:
    plan = auto.discharge()
    assert plan is not None
    auto.clock.now = NOW
    items = [
        "/44250-9",
        "/44255-8",
        "/44259-0",
        "/44254-1",
        "/44251-7",
        "/44258-2",
        "/44252-5",
        "/44253-3",
    ]
    auto.response("phq-9", [*(item(i, "LA6571-9") for i in items), item("/44260-8", "LA6568-5")])
    assert set(auto.added(plan)) == {EXPEDITED}  # 24 points, item 9 "not at all"
    assert auto.flags("suicide-risk") == []


@needs_scoring
def test_a_phq9_response_with_item_9_unanswered_raises_no_crisis_alert(auto: Screened) -> None:
    plan = auto.discharge()
    assert plan is not None
    auto.clock.now = NOW
    items = [
        "/44250-9",
        "/44255-8",
        "/44259-0",
        "/44254-1",
        "/44251-7",
        "/44258-2",
        "/44252-5",
        "/44253-3",
    ]
    auto.response("phq-9", [item(i, "LA6569-3") for i in items], status="stopped")
    assert auto.flags("suicide-risk") == [] and auto.added(plan) == {}
