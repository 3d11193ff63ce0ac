"""The safety plan's pages: the case manager writes the plan with the patient on a form, prints it
(the patient's words per step, the crisis line of the patient's country, the date), and gives it
to family only under the patient's consent; a user who may not see the plan finds nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from safety_plan_helpers import seed_patient
from web_helpers import csrf, sign_in, web_client

from fhir_gateway.services.lookup import search

PAGE = "/web/patients/sp1/safety-plan"


@pytest.fixture
def web(database, database_url) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with web_client(database, database_url) as client:
        seed_patient(database)
        assert sign_in(client, "cm").status_code == 303
        yield client


def _write(web: TestClient, **fields: str) -> Any:
    token = csrf(web.get(f"{PAGE}/edit").text)
    data = {
        "csrf_token": token,
        "warning-signs.sign": "I stop answering my phone\nLying awake after 3 am",
        "coping.strategy": "Walk the dog along the lake",
        "help.person.name.0": "Lucia (sister)",
        "help.person.phone.0": "217-555-0190",
        "reasons.most-important": "My daughter Sofia",
        **fields,
    }
    return web.post(f"{PAGE}/edit", data=data)


def test_the_patient_page_links_to_the_plan_and_its_form(web):
    page = web.get("/web/patients/sp1").text
    assert f'href="{PAGE}"' in page and f'href="{PAGE}/edit"' in page


def test_a_plan_written_on_the_form_prints_in_the_patients_words(web):
    assert web.get(PAGE).status_code == 404  # nothing written yet
    answer = _write(web)
    assert answer.status_code == 303 and answer.headers["location"] == f"{PAGE}?done=saved"
    page = web.get(PAGE).text
    for words in ("I stop answering my phone", "Lying awake after 3 am", "My daughter Sofia"):
        assert words in page
    assert 'href="tel:217-555-0190"' in page
    assert "988" in page  # the patient's address is in the US
    assert "Step 6" in page and "Nothing written yet." in page  # an empty step keeps its space
    assert "Stanley &amp; Brown, 2012" in page
    assert "<time datetime=" in page
    form = web.get(f"{PAGE}/edit").text  # an update starts from what is written
    assert "Lying awake after 3 am</textarea>" in form and 'value="Lucia (sister)"' in form


def test_a_form_that_cannot_be_kept_comes_back_with_the_reason_and_what_was_typed(web):
    answer = _write(web, **{"coping.strategy": "x" * 400})
    assert answer.status_code == 422
    assert "The plan was not saved" in answer.text and "300 characters" in answer.text
    assert "I stop answering my phone" in answer.text
    assert web.get(PAGE).status_code == 404  # nothing stored


def test_a_partner_who_may_not_see_the_plan_finds_nothing(web):
    _write(web)
    partner = TestClient(web.app, base_url="http://testserver", follow_redirects=False)
    assert sign_in(partner, "ann").status_code == 303
    answer = partner.get(PAGE)  # it treats the patient (owns a referral) but sees no care plan
    assert answer.status_code == 404
    assert (
        "no safety plan of this patient" in answer.text and "My daughter Sofia" not in answer.text
    )
    assert partner.get("/web/patients/nobody/safety-plan").status_code == 404
    shared = partner.post(f"{PAGE}/share/sp-sister", data={"csrf_token": csrf(answer.text)})
    assert shared.status_code == 403 and "may not use the case-manager pages" in shared.text


def test_family_gets_the_plan_only_under_the_patients_consent(web, database):
    _write(web)
    page = web.get(PAGE).text
    assert "Send to Lucia Alvarez" in page
    assert "Jorge Alvarez</strong>: not shared. The patient has not consented" in page
    token = csrf(page)
    sent = web.post(f"{PAGE}/share/sp-sister", data={"csrf_token": token})
    assert sent.status_code == 303
    assert "sent to Lucia Alvarez" in web.get(sent.headers["location"]).text
    refused = web.post(f"{PAGE}/share/sp-uncle", data={"csrf_token": token})
    assert refused.status_code == 422
    assert "has not consented to share their care information with Jorge Alvarez" in refused.text
    with database.session(readonly=True) as session:
        to_sister = search(session, "Communication", [("recipient", "RelatedPerson/sp-sister")])
        to_uncle = search(session, "Communication", [("recipient", "RelatedPerson/sp-uncle")])
    assert len(to_sister) == 1 and to_uncle == []
    printout = web.get(f"{PAGE}?for=sp-sister")
    assert printout.status_code == 200 and "a copy for Lucia Alvarez" in printout.text
    denied = web.get(f"{PAGE}?for=sp-uncle")
    assert denied.status_code == 403 and "may not be printed for Jorge Alvarez" in denied.text
