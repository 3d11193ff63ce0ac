"""The patient page's form for writing and revising the relapse-prevention plan, through the
TestClient as the case manager: a patient without a plan gets the form open and empty, and the plan
written there is the one reports are read against; a revision starts from the plan, keeps the item
ids of the signs it keeps, and supersedes it (its new threshold decides the next report); a form to
fix comes back (422) with what to fix and what was typed, nothing stored; a patient that does not
exist for the user answers 404; a partner cannot use the form."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from patient_helpers import World, patient_settings, seed_highest_risk
from relapse_helpers import SIGNS, create, patient, plan
from web_helpers import csrf, sign_in

from fhir_gateway import relapse
from fhir_gateway.app import create_app
from fhir_gateway.context import SYSTEM
from fhir_gateway.monitors import MONITOR_FLAGS

STAGES = ("early", "middle", "late")


@pytest.fixture
def desk(database, database_url) -> Iterator[tuple[World, TestClient]]:  # type: ignore[no-untyped-def]
    app = create_app(patient_settings(database_url), database=database)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        world = seed_highest_risk(database, app)
        database.write(relapse.seed)
        create(database, plan(f"Patient/{world.patient_id}"))
        assert sign_in(client, "cm").status_code == 303
        yield world, client


def _plans(world: World, patient_id: str) -> list[dict[str, Any]]:
    found = world.all("QuestionnaireResponse", ("subject", f"Patient/{patient_id}"))
    return sorted((r for r in found if relapse.is_plan(r)), key=lambda r: r["authored"])


def _fields(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "sign_id": ["", "", ""],
        "sign_text": ["Stop going to the mosque on Friday", "Count the cars outside", ""],
        "sign_stage": ["early", "late", ""],
        "sign_who": ["my brother", "", ""],
        "made_with": "Yusuf Ali (brother)\nCarla Mendes",
    }
    for n, stage in enumerate(STAGES, start=1):
        fields[f"do_{stage}"] = f"Do {stage}"
        fields[f"call_{stage}"] = f"Call {stage}"
        fields[f"threshold_{stage}"] = str(n)
    return {**fields, **changes}


def test_a_patient_without_a_plan_gets_one_written_on_the_page(desk, database):
    world, web = desk
    other = create(database, patient(), SYSTEM).split("/")[1]
    page = web.get(f"/web/patients/{other}").text
    assert '<details class="action plan-form" id="plan-form" open>' in page
    assert "Write the plan" in page and page.count('name="sign_text"') == 3
    posted = web.post(
        f"/web/patients/{other}/relapse-plan", data={"csrf_token": csrf(page), **_fields()}
    )
    assert posted.status_code == 303, posted.text
    assert posted.headers["location"].endswith("?done=relapse-plan#relapse-h")
    (stored,) = _plans(world, other)
    made = relapse.read_plan(stored)
    assert [(s.id, s.text, s.stage, s.noticed_by) for s in made.signs] == [
        ("sign-1", "Stop going to the mosque on Friday", "early", "my brother"),
        ("sign-2", "Count the cars outside", "late", ""),
    ]
    assert made.thresholds == {"early": 1, "middle": 2, "late": 3}
    assert made.actions["late"] == relapse.StageAction("Do late", "Call late")
    assert made.made_with == ("Yusuf Ali (brother)", "Carla Mendes")
    assert stored["author"] == {"display": "user:cm"}
    page = web.get(posted.headers["location"]).text
    assert "Relapse-prevention plan saved" in page
    assert "“Count the cars outside”" in page and page.count('name="sign"') == 2


def test_a_revision_keeps_the_signs_ids_and_supersedes_the_plan(desk):
    world, web = desk
    page = web.get(f"/web/patients/{world.patient_id}").text
    assert "Revise the plan" in page and page.count('name="sign_text"') == len(SIGNS) + 3
    assert 'value="Up all night, sleeping less than four hours"' in page
    fields = {
        "sign_id": [*SIGNS, ""],
        "sign_text": [text for text, _, _ in SIGNS.values()] + ["Pacing the room at night"],
        "sign_stage": [stage for _, stage, _ in SIGNS.values()] + ["early"],
        "sign_who": [who for _, _, who in SIGNS.values()] + ["my mother"],
    }
    fields["sign_text"][1] = ""  # "calls" dropped
    posted = web.post(
        f"/web/patients/{world.patient_id}/relapse-plan",
        data={"csrf_token": csrf(page), **_fields(**fields, threshold_early="1")},
    )
    assert posted.status_code == 303, posted.text
    before, after = _plans(world, world.patient_id)
    assert [s.id for s in relapse.read_plan(after).signs] == [
        "sleep",
        "tea",
        "tv",
        "voices",
        "sign-1",
    ]
    assert relapse.read_plan(before).thresholds["early"] == 3  # kept, not changed
    # the newest plan decides: one early sign now reaches the case manager
    token = csrf(web.get(f"/web/patients/{world.patient_id}").text)
    reported = web.post(
        f"/web/patients/{world.patient_id}/warning-signs",
        data={"csrf_token": token, "sign": "sign-1", "reporter": "family"},
    )
    assert reported.headers["location"].endswith("?done=warning-signs-raised")
    (flag,) = world.all("Flag", ("_tag", f"{MONITOR_FLAGS}|warning-signs"))
    assert "“Pacing the room at night”" in flag["code"]["text"]


BAD = {
    "no sign": (
        {"sign_text": ["", "", ""]},
        "Write at least one warning sign",
    ),
    "a sign with no stage": (
        {"sign_stage": ["early", "", ""]},
        "Choose the stage of “Count the cars outside”.",
    ),
    "no action": ({"do_middle": "  "}, "Say what to do at the middle stage."),
    "a threshold of 0": ({"threshold_late": "0"}, "how many late signs"),
    "a threshold in words": ({"threshold_early": "three"}, "a whole number from 1 to 30"),
    "a long sign": (
        {"sign_text": ["x" * 301, "Count the cars outside", ""]},
        "to 300 characters",
    ),
}


def test_a_form_to_fix_comes_back_with_what_to_fix_and_nothing_stored(desk):
    world, web = desk
    token = csrf(web.get(f"/web/patients/{world.patient_id}").text)
    for case, (changes, message) in BAD.items():
        answer = web.post(
            f"/web/patients/{world.patient_id}/relapse-plan",
            data={"csrf_token": token, **_fields(**changes)},
        )
        assert answer.status_code == 422, case
        assert "The plan was not saved" in answer.text and message in answer.text, case
        assert 'value="Call early"' in answer.text, case  # what was typed is kept
    assert len(_plans(world, world.patient_id)) == 1


def test_an_unknown_patient_answers_404_and_a_partner_cannot_write_a_plan(desk):
    world, web = desk
    token = csrf(web.get(f"/web/patients/{world.patient_id}").text)
    missing = web.post(
        "/web/patients/no-such-patient/relapse-plan", data={"csrf_token": token, **_fields()}
    )
    assert missing.status_code == 404
    web.cookies.clear()
    assert sign_in(web, "prairie").status_code == 303
    token = csrf(web.get("/web/login").text)
    refused = web.post(
        f"/web/patients/{world.patient_id}/relapse-plan", data={"csrf_token": token, **_fields()}
    )
    assert refused.status_code == 403
    assert len(_plans(world, world.patient_id)) == 1
