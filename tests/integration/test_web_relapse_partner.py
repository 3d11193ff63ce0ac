"""The partner inbox's warning-signs form, through the TestClient as the partner's intake worker:
a referral it has taken on offers "Report warning signs"; the form lists the patient's own signs
from their plan; a report past the plan's threshold raises the case manager's work item, one below
raises none, and the report is the partner's own (author, reporter, basedOn the referral); a form
to fix comes back with what to fix and nothing stored; a referral it has not taken on, or another
partner's, answers 404."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from relapse_helpers import create, plan
from web_helpers import csrf, seed_caseload, sign_in, version_of, web_client

from fhir_gateway import relapse
from fhir_gateway.monitors import MONITOR_FLAGS
from fhir_gateway.services import lookup
from fhir_gateway.store.db import Database

FORM = "/web/inbox/t1/warning-signs"


@pytest.fixture
def web(database: Database, database_url: str) -> Iterator[TestClient]:
    seed_caseload(database)
    database.write(relapse.seed)
    create(database, plan("Patient/p1"))
    with web_client(database, database_url) as client:
        assert sign_in(client, "ann").status_code == 303
        yield client


def _accept(web: TestClient) -> None:
    page = web.get("/web/inbox").text
    data = {"csrf_token": csrf(page), "version": version_of(page, "t1")}
    assert web.post("/web/inbox/t1/accept", data=data).status_code == 303


def _flags(database: Database) -> list[dict[str, Any]]:
    return database.read(
        lambda s: lookup.search(s, "Flag", [("_tag", f"{MONITOR_FLAGS}|warning-signs")])
    )


def _reports(database: Database) -> list[dict[str, Any]]:
    found = database.read(lambda s: lookup.search(s, "QuestionnaireResponse", []))
    return [r for r in found if relapse.is_report(r)]


def _post(web: TestClient, url: str = FORM, **fields: Any) -> Any:
    return web.post(url, data={"csrf_token": csrf(web.get("/web/inbox").text), **fields})


def test_a_partner_reports_the_patients_own_signs_from_its_referral(web, database):
    assert web.get(FORM).status_code == 404  # not taken on yet
    assert "Report warning signs" not in web.get("/web/inbox").text
    _accept(web)
    inbox = web.get("/web/inbox").text
    assert f'href="{FORM}"' in inbox and 'href="/web/inbox/t2/warning-signs"' not in inbox

    form = web.get(FORM)
    assert form.status_code == 200
    assert "Report warning signs: Jane Doe" in form.text
    assert form.text.count('name="sign"') == 5
    assert "“Hear the neighbours plotting through the wall”" in form.text
    assert "Go to the crisis clinic today with my mother" in form.text

    for fields, message in (
        ({}, "Tick the signs noticed"),
        ({"sign": ["shouting"]}, "Choose signs from the patient"),
    ):
        refused = _post(web, **fields)
        assert refused.status_code == 422 and message in refused.text
    assert _reports(database) == []

    below = _post(web, sign=["sleep", "calls"], reporter_name="Ann (housing worker)")
    assert below.status_code == 303
    assert below.headers["location"] == "/web/inbox?done=warning-signs"
    assert _flags(database) == []

    crossed = _post(web, sign=["tv", "voices"], other="Shouting at the neighbours' door")
    assert crossed.status_code == 303
    assert "done=warning-signs-raised" in crossed.headers["location"]
    (flag,) = _flags(database)
    assert "reported by a partner" in flag["code"]["text"]
    assert "Go to the crisis clinic today with my mother" in flag["code"]["text"]
    assert "work item" in web.get(crossed.headers["location"]).text
    for report in _reports(database):
        assert report["author"] == {"reference": "Organization/harbor"}
        assert report["basedOn"] == [{"reference": "ServiceRequest/sr1"}]
        assert relapse.read_report(report).reporter == "partner"


def test_a_partner_that_does_not_treat_the_patient_gets_404(web, database):
    _accept(web)
    assert web.get("/web/inbox/t2/warning-signs").status_code == 404  # open, not its own
    assert _post(web, "/web/inbox/t2/warning-signs", sign=["voices"]).status_code == 404
    web.cookies.clear()
    assert sign_in(web, "pat").status_code == 303
    assert web.get(FORM).status_code == 404
    assert web.get("/web/inbox/no-such-task/warning-signs").status_code == 404
    assert _post(web, sign=["voices"]).status_code == 404
    assert _reports(database) == [] and _flags(database) == []


def test_without_a_plan_the_form_says_to_message_the_case_manager(database, database_url):
    seed_caseload(database)
    database.write(relapse.seed)
    with web_client(database, database_url) as web:
        assert sign_in(web, "ann").status_code == 303
        _accept(web)
        page = web.get(FORM).text
        assert "has not recorded a relapse-prevention plan" in page and 'name="sign"' not in page
        refused = _post(web, sign=["voices"])
        assert refused.status_code == 422
    assert _reports(database) == []
