"""Measurement-based care through the gateway and the patient page: Jane Doe's discharge on Mon
10 Mar 2025 schedules PHQ-9 and GAD-7 at day 14, 30, 60 and 90 on her plan; the case manager asks
the PHQ-9 on day 14 through the page's form, which completes the due Task; her totals show as a
chart with the response and remission thresholds, response and remission stored as Observations.
One world for the module (the seed is the slow part): each test holds whatever order the tests
run in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from emptied import empty_tables
from fastapi.testclient import TestClient
from mbc_helpers import GAD7, PHQ9, total
from monitor_helpers import local
from patient_helpers import World, patient_settings, seed_highest_risk
from sqlalchemy import select
from web_helpers import csrf, sign_in

from fhir_gateway import clock
from fhir_gateway.app import create_app
from fhir_gateway.assessments import MBC
from fhir_gateway.context import SYSTEM
from fhir_gateway.services import resources
from fhir_gateway.store.db import Database
from fhir_gateway.store.tables import search_parameter_state

SDC = "http://hl7.org/fhir/uv/sdc/CodeSystem/temp"


def _empty(database: Database) -> None:
    """As the suite's ``database`` fixture does, once for this module's world."""
    with database.engine.begin() as conn:
        stored = conn.execute(select(search_parameter_state.c.id)).first() is not None
        empty_tables(conn, postgres=database.is_postgres)
    if stored:
        database.search_parameters.forget()


@pytest.fixture(scope="module")
def world_client(_migrated: Database, database_url: str) -> Iterator[tuple[World, TestClient]]:
    _empty(_migrated)
    app = create_app(patient_settings(database_url), database=_migrated)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        world = seed_highest_risk(_migrated, app)
        with _migrated.session() as session:
            for doc in (PHQ9, GAD7):
                resources.update(session, "Questionnaire", doc["id"], doc, SYSTEM)
        assert sign_in(client, "cm").status_code == 303
        yield world, client
    clock.reset_clock()
    _empty(_migrated)


def _measurements(world: World) -> list[dict[str, Any]]:
    return world.all("Task", ("code", f"{SDC}|complete-questionnaire"))


def _task(world: World, occasion: str) -> dict[str, Any]:
    (task,) = [t for t in _measurements(world) if t["identifier"][0]["value"].endswith(occasion)]
    return task


def _day14(world: World) -> dict[str, Any]:
    return _task(world, "phq-9-day-14")


def _section(page: str) -> str:
    return page[page.index('id="measures-h"') : page.index('id="plans-h"')]


def test_the_discharge_puts_phq9_and_gad7_due_on_the_plan_for_the_case_team(world_client):
    world, web = world_client
    tasks = _measurements(world)
    assert len(tasks) == 8  # other tests here may have completed or closed one meanwhile
    assert {t["status"] for t in tasks} <= {"requested", "completed", "failed"}
    assert _task(world, "phq-9-day-30")["status"] == "requested"
    (plan,) = [p for p in world.all("CarePlan") if p["status"] == "active"]
    linked = {a["reference"]["reference"] for a in plan["activity"]}
    assert {f"Task/{t['id']}" for t in tasks} <= linked
    psychiatry = [
        t
        for t in world.all("Task", ("code", "http://hl7.org/fhir/CodeSystem/task-code|fulfill"))
        if "psychiatr" in str(world.read(t["focus"]["reference"])["code"]).lower()
    ]
    owners = {(t.get("owner") or {}).get("reference") for t in tasks}
    # the case manager (or, none assigned yet, the case team) asks: a partner could not record
    # the answers with its own credentials
    assert psychiatry and psychiatry[0]["owner"]["reference"] not in owners
    assert all(o is None or o.startswith("Practitioner/") for o in owners), owners
    day14 = _day14(world)  # discharged Mon 10 Mar in Chicago: day 11..17 is 21..27 Mar
    assert day14["restriction"]["period"] == {
        "start": "2025-03-21T00:00:00-05:00",
        "end": "2025-03-27T23:59:59-05:00",
    }
    assert day14["input"][0]["valueCanonical"] == PHQ9["url"]
    codes = [{s["code"] for s in t["meta"].get("security", [])} for t in (psychiatry[0], day14)]
    assert "PSY" in codes[0] and codes[0] == codes[1]  # as sensitive as the referral, no more

    section = _section(web.get(f"/web/patients/{world.patient_id}").text)
    assert "PHQ-9 at day 30" in section and "Sat 5 Apr to Sun 13 Apr" in section
    assert "upcoming" in section
    day30 = _task(world, "phq-9-day-30")["id"]
    assert f'href="/web/patients/{world.patient_id}/questionnaires/phq-9?task={day30}"' in section


def _answers(page: str, skip: int | None = None, choice: str = "1") -> dict[str, str]:
    names = sorted(set(re.findall(r'name="(a-\d+)"', page)), key=lambda n: int(n[2:]))
    return {n: choice for i, n in enumerate(names) if i != skip}


def test_the_form_shows_each_question_as_a_labelled_radio_group(world_client):
    world, web = world_client
    page = web.get(f"/web/patients/{world.patient_id}/questionnaires/phq-9")
    assert page.status_code == 200
    html = page.text
    assert html.count("<fieldset") == 9 and html.count('type="radio"') == 36
    assert "<legend>Little interest or pleasure in doing things" in html
    assert html.count("(required)</span>") >= 9
    assert '<label for="a-0-3">Nearly every day</label>' in html
    assert "Total score" not in html  # the gateway calculates it
    assert "Pfizer" in html  # the instrument's notice


def test_a_missing_answer_comes_back_in_words_with_the_answers_kept(world_client):
    world, web = world_client
    form = web.get(f"/web/patients/{world.patient_id}/questionnaires/phq-9").text
    before = world.all("QuestionnaireResponse")
    posted = web.post(
        f"/web/patients/{world.patient_id}/questionnaires/phq-9",
        data={**_answers(form, skip=2), "csrf_token": csrf(form)},
    )
    assert posted.status_code == 422
    assert "some questions need an answer" in posted.text and "Answer this question." in posted.text
    assert 'id="a-0-1" name="a-0" value="1" checked' in posted.text
    assert world.all("QuestionnaireResponse") == before


def test_answering_inside_the_window_completes_the_due_phq9(world_client):
    world, web = world_client
    world.clock.now = local("20250324100000")  # day 14
    task = _day14(world)
    before = {r["id"] for r in world.all("QuestionnaireResponse")}
    form = web.get(f"/web/patients/{world.patient_id}/questionnaires/phq-9?task={task['id']}").text
    posted = web.post(
        f"/web/patients/{world.patient_id}/questionnaires/phq-9?task={task['id']}",
        data={**_answers(form, choice="2"), "csrf_token": csrf(form)},
    )
    assert posted.status_code == 303, posted.text
    (response,) = [r for r in world.all("QuestionnaireResponse") if r["id"] not in before]
    assert (
        posted.headers["location"] == f"/web/patients/{world.patient_id}/responses/{response['id']}"
    )
    assert response["questionnaire"] == f"{PHQ9['url']}|1.0.0"
    assert response["subject"] == {"reference": f"Patient/{world.patient_id}"}
    assert world.read(response["author"]["reference"])["resourceType"] == "Practitioner"
    assert len(response["item"]) == 9
    assert response["item"][0]["answer"] == [
        {
            "valueCoding": {
                "system": "http://loinc.org",
                "code": "LA6570-1",
                "display": "More than half the days",
            }
        }
    ]
    done = _day14(world)
    assert done["status"] == "completed"
    assert done["output"][0]["valueReference"] == {
        "reference": f"QuestionnaireResponse/{response['id']}"
    }
    assert _task(world, "phq-9-day-30")["status"] == "requested"  # only the one in its window
    result = web.get(posted.headers["location"])
    assert result.status_code == 200 and "PHQ-9 at day 14 is done." in result.text


def test_totals_show_as_a_chart_with_thresholds_and_response_and_remission(world_client):
    world, web = world_client
    patient = f"Patient/{world.patient_id}"
    with world.database.session() as session:
        for obs_id, value, when in (
            ("phq-a", 18, "2025-03-12T10:00:00-05:00"),
            ("phq-b", 8, "2025-04-09T10:00:00-05:00"),
            ("phq-c", 4, "2025-05-10T10:00:00-05:00"),
        ):
            resources.update(
                session,
                "Observation",
                obs_id,
                total(patient, "44261-6", value, when, obs_id),
                SYSTEM,
            )
    derived = world.all("Observation", ("code", f"{MBC}|response,{MBC}|remission"))
    by = {(o["code"]["coding"][0]["code"], o["derivedFrom"][-1]["reference"]): o for o in derived}
    assert by[("response", "Observation/phq-b")]["valueBoolean"] is True  # 18 → 8
    assert by[("remission", "Observation/phq-b")]["valueBoolean"] is False
    assert by[("remission", "Observation/phq-c")]["valueBoolean"] is True
    assert ("response", "Observation/phq-a") not in by  # the baseline
    assert world.read("CodeSystem/measurement-based-care")["url"] == MBC

    section = _section(web.get(f"/web/patients/{world.patient_id}").text)
    svg = section[section.index("<svg") : section.index("</svg>")]
    assert 'role="img"' in svg and "<title" in svg and "<desc" in svg
    assert (
        "Remission: below 5" in svg
        and "Response: 9 or less" in svg
        and "(half of the baseline 18)" in svg
    )
    assert all(f">{v}</text>" in svg for v in (18, 8, 4))
    assert "The latest total, 4, is in remission." in svg
    table = section[section.index("PHQ-9 totals (the chart") :]
    assert re.search(r"<td>8</td><td>Yes</td><td>No</td>", table)
    assert "No GAD-7 totals yet." in section


def test_a_partner_or_an_unknown_patient_or_questionnaire_gets_no_form(world_client):
    world, web = world_client
    assert web.get("/web/patients/no-such-patient/questionnaires/phq-9").status_code == 404
    assert web.get(f"/web/patients/{world.patient_id}/questionnaires/nope").status_code == 404
    assert web.get(f"/web/patients/{world.patient_id}/responses/nope").status_code == 404
    token = csrf(web.get("/web/login").text)
    web.post("/web/logout", data={"csrf_token": token})
    assert sign_in(web, "prairie").status_code == 303
    try:
        page = web.get(f"/web/patients/{world.patient_id}/questionnaires/phq-9")
        assert page.status_code == 403 and "Jane" not in page.text
        posted = web.post(
            f"/web/patients/{world.patient_id}/questionnaires/phq-9",
            data={"a-0": "1", "csrf_token": csrf(web.get("/web/inbox").text)},
        )
        assert posted.status_code == 403
    finally:
        web.post("/web/logout", data={"csrf_token": csrf(web.get("/web/inbox").text)})
        assert sign_in(web, "cm").status_code == 303


def test_the_partner_that_measures_may_close_the_task_but_not_change_what_it_is_about(
    world_client,
):
    from fhir_gateway.errors import Forbidden
    from fhir_gateway.security import TokenCaller

    world, _ = world_client
    (task,) = [
        t for t in _measurements(world) if t["identifier"][0]["value"].endswith("gad-7-day-90")
    ]
    treating = "Organization/springfield-cmhc"
    with world.database.session() as session:  # a case manager hands this one to the partner
        task = resources.update(
            session, "Task", task["id"], {**task, "owner": {"reference": treating}}, SYSTEM
        ).stored.content
    partner = TokenCaller(
        client_id="springfield",
        role="partner",
        organization=treating,
        scopes=frozenset({"system/Task.rus"}),
    )
    with pytest.raises(Forbidden, match="not: for"):
        with world.database.session() as session:
            moved = {**task, "for": {"reference": "Patient/someone-else"}}
            resources.update(session, "Task", task["id"], moved, partner)
    with world.database.session() as session:
        failed = {**task, "status": "failed", "statusReason": {"text": "Patient moved away"}}
        resources.update(session, "Task", task["id"], failed, partner)
    assert world.read(f"Task/{task['id']}")["status"] == "failed"
