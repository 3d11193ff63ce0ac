"""The measurement schedule read from the shipped template, and a response completing its Task."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import mappings
from fhir_gateway.assessments import due_task_for, measurement_tasks, occasions
from fhir_gateway.assessments._completion import complete

TEMPLATE = json.loads(
    (
        Path(mappings.__file__).parent / "careplans" / "PlanDefinition-measurement-based-care.json"
    ).read_text()
)
PHQ9 = "http://fhir-gateway.org/fhir/Questionnaire/phq-9"
GAD7 = "http://fhir-gateway.org/fhir/Questionnaire/gad-7"
CHICAGO = ZoneInfo("America/Chicago")
# discharged on the evening of 2 March 2026 in Chicago: already 3 March in UTC
DISCHARGED = datetime(2026, 3, 3, 1, 30, tzinfo=UTC)
NOW = datetime(2026, 3, 3, 1, 31, tzinfo=UTC)
PLAN = {
    "resourceType": "CarePlan",
    "id": "plan-1",
    "status": "active",
    "subject": {"reference": "Patient/p1"},
    "encounter": {"reference": "Encounter/e1"},
}
OWNER = {"reference": "Organization/lakeside-psychiatry"}


def _tasks(plan=PLAN, owner=OWNER):
    return measurement_tasks(plan, occasions(TEMPLATE), DISCHARGED, CHICAGO, owner, NOW)


def test_the_template_asks_for_phq9_and_gad7_at_day_14_30_60_90() -> None:
    found = occasions(TEMPLATE)
    due = sorted({(o.questionnaire, (o.low + o.high) // 2) for o in found})
    assert due == sorted((q, d) for q in (PHQ9, GAD7) for d in (14, 30, 60, 90))


def test_windows_count_calendar_days_from_the_local_discharge_day() -> None:
    day14 = next(t for t in _tasks() if "phq-9-day-14" in t["identifier"][0]["value"])
    # day 0 is 2 March in Chicago, so day 11..17 is 13..19 March, local time
    assert day14["restriction"]["period"] == {
        "start": "2026-03-13T00:00:00-05:00",
        "end": "2026-03-19T23:59:59-05:00",
    }


def test_each_task_is_an_sdc_task_for_the_patient_owned_by_the_treating_partner() -> None:
    tasks = _tasks()
    assert len(tasks) == 8 and len({t["id"] for t in tasks}) == 8
    task = tasks[0]
    assert task["code"]["coding"][0]["code"] == "complete-questionnaire"
    assert task["input"][0]["valueCanonical"] == PHQ9
    assert task["for"] == {"reference": "Patient/p1"}
    assert task["owner"] == OWNER
    assert task["basedOn"] == [{"reference": "CarePlan/plan-1"}]
    assert task["status"] == "requested"


def test_the_tasks_carry_the_sensitivity_labels_they_are_given() -> None:
    labels = [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"},
        {"system": "http://fhir-gateway.org/fhir/CodeSystem/mhca", "code": "MHCA2017"},
    ]
    tasks = measurement_tasks(PLAN, occasions(TEMPLATE), DISCHARGED, CHICAGO, OWNER, NOW, labels)
    assert all(t["meta"]["security"] == labels for t in tasks)
    assert "meta" not in _tasks()[0]


def test_a_draft_plan_makes_draft_tasks_and_ids_are_stable() -> None:
    draft = _tasks({**PLAN, "status": "draft"}, owner=None)
    assert {t["status"] for t in draft} == {"draft"}
    assert "owner" not in draft[0]
    assert [t["id"] for t in draft] == [t["id"] for t in _tasks()]


def test_a_retired_or_edited_template_changes_the_schedule() -> None:
    assert occasions({**TEMPLATE, "status": "retired"}) == []
    edited = json.loads(json.dumps(TEMPLATE))
    del edited["action"][1]  # no GAD-7
    edited["action"][0]["action"] = edited["action"][0]["action"][:1]
    assert [(o.questionnaire, o.low, o.high) for o in occasions(edited)] == [(PHQ9, 11, 17)]


def _response(authored: str, questionnaire: str = PHQ9) -> dict:
    return {
        "resourceType": "QuestionnaireResponse",
        "id": "qr1",
        "status": "completed",
        "questionnaire": f"{questionnaire}|1.0.0",
        "subject": {"reference": "Patient/p1"},
        "authored": authored,
    }


def test_a_response_inside_the_window_completes_that_task_only() -> None:
    tasks = _tasks()
    found = due_task_for(tasks, _response("2026-03-15T10:00:00-05:00"))
    assert found is not None and found["identifier"][0]["value"] == "plan-1|phq-9-day-14"
    done = complete(found, "QuestionnaireResponse/qr1")
    assert done["status"] == "completed"
    assert done["output"][0]["valueReference"] == {"reference": "QuestionnaireResponse/qr1"}
    gad = due_task_for(tasks, _response("2026-03-15T10:00:00-05:00", GAD7))
    assert gad is not None and gad["identifier"][0]["value"] == "plan-1|gad-7-day-14"


def test_a_response_outside_every_window_or_to_a_done_task_completes_nothing() -> None:
    tasks = _tasks()
    assert due_task_for(tasks, _response("2026-03-22T10:00:00-05:00")) is None  # day 20
    assert due_task_for(tasks, _response("2026-03-12T23:00:00-05:00")) is None  # day 10
    closed = [{**t, "status": "completed"} for t in tasks]
    assert due_task_for(closed, _response("2026-03-15T10:00:00-05:00")) is None
    drafts = [{**t, "status": "draft"} for t in tasks]  # plan not approved yet
    assert due_task_for(drafts, _response("2026-03-15T10:00:00-05:00")) is None
    assert due_task_for(tasks, {**_response("2026-03-15"), "authored": None}) is None
