"""Warning-sign reports against the patient's own relapse-prevention plan, through the services
with the writer's rights: crossing the plan's threshold raises one work item naming the signs in
the patient's words and the plan's action; below it, none; a report amended below it or entered in
error ends it; what the engine cannot act on is refused with the item named; a patient the writer
may not see answers as one that does not exist."""

from __future__ import annotations

from typing import Any

import pytest
from relapse_helpers import CASE_MANAGER, create, patient, plan, report

from fhir_gateway import relapse
from fhir_gateway.app import install_rules
from fhir_gateway.context import SYSTEM, Caller
from fhir_gateway.errors import BusinessRule, NotFound
from fhir_gateway.monitors import MONITOR_FLAGS
from fhir_gateway.services import resources
from fhir_gateway.store import repository as repo
from fhir_gateway.store.db import Database
from fhir_gateway.store.search import match_ids


@pytest.fixture
def ravi(database: Database, settings) -> tuple[Database, str]:  # type: ignore[no-untyped-def]
    install_rules(settings, database)
    database.write(relapse.seed)  # the Questionnaires the responses answer
    patient_ref = create(database, patient(), SYSTEM)
    create(database, plan(patient_ref))
    return database, patient_ref


def _flags(database: Database, status: str | None = "active") -> list[dict[str, Any]]:
    def run(session: Any) -> list[dict[str, Any]]:
        ids = match_ids(
            session, "Flag", [("_tag", f"{MONITOR_FLAGS}|warning-signs")], caller=SYSTEM
        )
        docs = [repo.read(session, "Flag", i).content for i in ids]  # type: ignore[union-attr]
        return [d for d in docs if status is None or d["status"] == status]

    return database.read(run)


def test_a_late_sign_reported_by_the_family_raises_a_work_item_with_the_plans_action(ravi):
    database, patient_ref = ravi
    report_ref = create(database, report(patient_ref, "voices", "sleep"))
    (flag,) = _flags(database)
    assert flag["subject"] == {"reference": patient_ref}
    text = flag["code"]["text"]
    assert "reported by family or carer (Lakshmi Kumar) on 2025-04-02" in text
    assert "late stage" in text and "“Hear the neighbours plotting through the wall”" in text
    assert "early “Up all night, sleeping less than four hours”" in text
    assert "the plan says: Go to the crisis clinic today with my mother." in text  # late stage
    assert "Sangamon crisis line 217-555-0199" in text
    details = [e["valueReference"]["reference"] for e in flag["extension"] if "valueReference" in e]
    assert details[0] == report_ref and details[1].startswith("QuestionnaireResponse/")
    priority = flag["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
    assert priority == "PH"


def test_signs_below_the_plans_threshold_raise_nothing(ravi):
    database, patient_ref = ravi
    create(database, report(patient_ref, "sleep", "calls", reporter="patient"))  # 2 early < 3
    create(database, report(patient_ref, "tv", reporter="partner"))  # 1 middle < 2
    assert _flags(database, None) == []


def test_early_signs_reaching_the_threshold_act_at_the_early_stage(ravi):
    database, patient_ref = ravi
    create(database, report(patient_ref, "sleep", "calls", "tv"))  # 2 early + 1 middle ≥ 3
    (flag,) = _flags(database)
    text = flag["code"]["text"]
    assert "at the early stage" in text and "take my evening dose with my mother" in text
    assert flag["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "PM"


def test_the_threshold_is_the_plans_answer(ravi):
    database, patient_ref = ravi
    create(database, report(patient_ref, "sleep"))
    assert _flags(database) == []
    create(database, plan(patient_ref, thresholds=(1, 1, 1), authored="2025-03-30T10:00:00Z"))
    create(database, report(patient_ref, "sleep"))  # the newest plan: one early sign is enough
    assert len(_flags(database)) == 1


def test_a_report_amended_below_the_threshold_or_entered_in_error_ends_its_work_item(ravi):
    database, patient_ref = ravi
    report_ref = create(database, report(patient_ref, "voices"))
    assert len(_flags(database)) == 1
    report_id = report_ref.split("/")[1]

    def change(doc: dict[str, Any]) -> None:
        database.write(
            lambda s: resources.update(
                s, "QuestionnaireResponse", report_id, {**doc, "id": report_id}, CASE_MANAGER
            )
        )

    change(report(patient_ref, "sleep", status="amended"))
    assert _flags(database) == [] and len(_flags(database, "inactive")) == 1
    change(report(patient_ref, "voices", status="amended"))
    assert len(_flags(database)) == 1
    change(report(patient_ref, "voices", status="entered-in-error"))
    assert _flags(database) == []


REFUSED = {
    "a sign the plan does not have": (
        lambda p: report(p, "voices", "shouting"),
        "no warning sign with the item id shouting",
    ),
    "a sign named by text, not by its id": (
        lambda p: {
            **report(p),
            "item": [
                *report(p)["item"],
                {"linkId": "signs-present", "answer": [{"valueString": "voices"}]},
            ],
        },
        "Each answer of 'signs-present' is a Coding",
    ),
    "no reporter": (
        lambda p: {**report(p, "voices"), "item": report(p, "voices")["item"][1:]},
        "reporter",  # named by the engine's check, or first by the generic validator
    ),
    "a plan of another questionnaire": (
        lambda p: report(p, "voices", plan_ref="QuestionnaireResponse/no-such-plan"),
        "The plan QuestionnaireResponse/no-such-plan is not known",
    ),
    "a plan without thresholds": (
        lambda p: {**plan(p), "item": [i for i in plan(p)["item"] if i["linkId"] != "threshold"]},
        "threshold",  # named by the engine's check, or first by the generic validator
    ),
    "a plan whose sign has no item id": (
        lambda p: {
            **plan(p),
            "item": [{k: v for k, v in i.items() if k != "id"} for i in plan(p)["item"]],
        },
        "needs an item id",
    ),
}


def test_what_the_engine_cannot_act_on_is_refused_naming_the_item(ravi):
    database, patient_ref = ravi
    for case, (build, message) in REFUSED.items():
        with pytest.raises(BusinessRule) as refused:
            create(database, build(patient_ref))
        assert message in refused.value.message, case
    assert _flags(database, None) == []


def test_a_report_for_a_patient_without_a_plan_says_to_make_one(ravi):
    database, _ = ravi
    other = create(database, patient(), SYSTEM)
    with pytest.raises(BusinessRule, match="no completed relapse-prevention plan"):
        create(database, report(other, "voices"))


def test_a_report_for_a_patient_the_writer_may_not_see_is_not_found(ravi):
    database, patient_ref = ravi
    partner = Caller(
        client_id="harbor",
        role="partner",
        organization="Organization/harbor",
        scopes=frozenset({"system/QuestionnaireResponse.c", "system/Patient.r"}),
    )
    with pytest.raises(NotFound) as hidden:
        create(database, report(patient_ref, "voices"), partner)
    with pytest.raises(NotFound) as missing:
        create(database, report("Patient/no-such-patient", "voices"), partner)
    assert str(hidden.value.message).replace(patient_ref, "X") == str(
        missing.value.message
    ).replace("Patient/no-such-patient", "X")
    assert _flags(database, None) == []


def test_through_the_rest_api_a_report_is_a_questionnaire_response(ravi, client):
    database, patient_ref = ravi
    created = client.post("/QuestionnaireResponse", json=report(patient_ref, "voices"))
    assert created.status_code == 201, created.text
    assert len(_flags(database)) == 1
    refused = client.post("/QuestionnaireResponse", json=report(patient_ref, "shouting"))
    assert refused.status_code == 422
    outcome = refused.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "no warning sign with the item id shouting" in outcome["issue"][0]["diagnostics"]
    assert outcome["issue"][0]["expression"] == [
        "QuestionnaireResponse.item.where(linkId='signs-present')"
    ]


def test_the_shipped_questionnaires_are_stored_once_and_an_edit_survives(ravi):
    database, _ = ravi
    stored = {q["id"]: q for q in _all(database, "Questionnaire")}
    assert set(stored) == {"relapse-prevention-plan", "warning-signs-report"}
    edited = {**stored["warning-signs-report"], "title": "Signs noticed this week"}
    database.write(lambda s: resources.update(s, "Questionnaire", edited["id"], edited, SYSTEM))
    assert database.write(relapse.seed) == 0
    (kept,) = [q for q in _all(database, "Questionnaire") if q["id"] == "warning-signs-report"]
    assert kept["title"] == "Signs noticed this week"


def _all(database: Database, res_type: str) -> list[dict[str, Any]]:
    def run(session: Any) -> list[dict[str, Any]]:
        ids = match_ids(session, res_type, [], caller=SYSTEM)
        return [repo.read(session, res_type, i).content for i in ids]  # type: ignore[union-attr]

    return database.read(run)
