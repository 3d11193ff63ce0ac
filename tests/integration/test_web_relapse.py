"""The patient page's relapse-prevention plan, its warning-signs form and the risk summary, through
the TestClient as the case manager: the plan in the patient's words; a report past the plan's
threshold raises the work item (on the page and on the worklist, with the row's risk line), one
below it raises none; a form to fix comes back with what to fix and nothing stored; a patient
that does not exist for the user answers 404; a partner cannot use the form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from patient_helpers import World, patient_settings, seed_highest_risk
from relapse_helpers import create, plan
from web_helpers import csrf, sign_in
from worklist_helpers import visible_text

from fhir_gateway import relapse
from fhir_gateway.app import create_app
from fhir_gateway.monitors import MONITOR_FLAGS


@pytest.fixture
def desk(database, database_url) -> Iterator[tuple[World, TestClient]]:  # type: ignore[no-untyped-def]
    app = create_app(patient_settings(database_url), database=database)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        world = seed_highest_risk(database, app)
        database.write(relapse.seed)
        create(database, plan(f"Patient/{world.patient_id}"))
        assert sign_in(client, "cm").status_code == 303
        yield world, client


def _section(page: str, start: str, end: str) -> str:
    return visible_text(page[page.index(start) : page.index(end)])


def _post(web: TestClient, world: World, token: str, **fields: Any) -> Any:
    return web.post(
        f"/web/patients/{world.patient_id}/warning-signs", data={"csrf_token": token, **fields}
    )


def _warning_flags(world: World) -> list[dict[str, Any]]:
    return world.all("Flag", ("_tag", f"{MONITOR_FLAGS}|warning-signs"))


BAD = {
    "nobody named": ({"sign": ["voices"]}, "Say who noticed the signs."),
    "nothing noticed": ({"reporter": "family"}, "Tick the signs noticed"),
    "a sign not in the plan": ({"sign": ["shouting"], "reporter": "family"}, "Choose signs from"),
    "a long name": (
        {"sign": ["voices"], "reporter": "family", "reporter_name": "L" * 201},
        "Keep this to 200 characters",
    ),
}


def test_recording_warning_signs_against_the_patients_plan_from_the_page(desk):
    # One patient throughout: the plan shown, wrong forms (nothing stored), a report below the
    # threshold (no work item), then one past it (the work item, on the page and the worklist).
    world, web = desk
    page = web.get(f"/web/patients/{world.patient_id}").text
    token = csrf(page)
    plan_text = _section(page, 'id="relapse-h"', 'id="report-h"')
    assert "Made Wed 12 Mar with Lakshmi Kumar (mother)" in plan_text
    assert (
        "Late “Hear the neighbours plotting through the wall” (noticed by my mother)" in plan_text
    )
    assert "Go to the crisis clinic today with my mother Call: Sangamon crisis line" in plan_text
    assert (
        "3 early signs (or later ones) at once" in plan_text and "1 late sign at once" in plan_text
    )
    assert page.count('name="sign"') == 5
    summary = _section(page, 'id="active-h"', 'id="relapse-h"')
    assert "ED visit" in summary and "from its alert below" in summary
    assert f'href="#alert-{world.crisis_flag}"' in page

    for case, (fields, message) in BAD.items():
        answer = _post(web, world, token, **fields)
        assert answer.status_code == 422, case
        assert "The report was not recorded" in answer.text and message in answer.text, case
    assert [r for r in world.all("QuestionnaireResponse") if relapse.is_report(r)] == []

    answer = _post(
        web, world, token, sign=["sleep", "calls"], reporter="patient", other="Skips meals"
    )
    assert answer.status_code == 303 and answer.headers["location"].endswith("?done=warning-signs")
    assert _warning_flags(world) == []

    world.clock.advance(minutes=40)  # her mother calls later that morning
    answer = _post(
        web, world, token, sign=["voices", "sleep"], reporter="family", reporter_name="Lakshmi"
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].endswith("?done=warning-signs-raised")
    (flag,) = _warning_flags(world)
    assert "“Hear the neighbours plotting through the wall”" in flag["code"]["text"]
    page = web.get(answer.headers["location"]).text
    assert "past what the plan says to act on, so a work item is on the worklist" in page
    summary = _section(page, 'id="active-h"', 'id="relapse-h"')
    assert "Warning signs" in summary and "Go to the crisis clinic today" in summary
    reports = _section(page, 'id="reports-h"', 'id="diagnoses-h"')
    assert reports.index(
        "by family or carer (Lakshmi) · past the plan's threshold"
    ) < reports.index(
        "by the patient: “Up all night, sleeping less than four hours”, “Not answering my "
        "sister's calls”. Also: Skips meals"
    )
    authors = [r["author"] for r in world.all("QuestionnaireResponse") if relapse.is_report(r)]
    assert authors == [{"display": "user:cm"}] * 2

    worklist = web.get("/web/worklist").text
    rows = re.findall(r'<tr class="kind-([a-z-]+)">(.*?)</tr>', worklist, flags=re.S)
    warning = [visible_text(row) for kind, row in rows if kind == "warning-signs"]
    assert warning and "Call the patient and family; follow their plan" in warning[0]
    assert "Active now: ED visit (yesterday) · Warning signs (today)" in warning[0]


def test_a_patient_the_user_cannot_see_answers_404_and_a_partner_cannot_report(desk):
    world, web = desk
    token = csrf(web.get(f"/web/patients/{world.patient_id}").text)
    missing = web.post(
        "/web/patients/no-such-patient/warning-signs",
        data={"csrf_token": token, "sign": "voices", "reporter": "family"},
    )
    assert missing.status_code == 404
    web.cookies.clear()
    assert sign_in(web, "prairie").status_code == 303
    token = csrf(web.get("/web/login").text)
    refused = web.post(
        f"/web/patients/{world.patient_id}/warning-signs",
        data={"csrf_token": token, "sign": "voices", "reporter": "partner"},
    )
    assert refused.status_code == 403
    assert _warning_flags(world) == []
