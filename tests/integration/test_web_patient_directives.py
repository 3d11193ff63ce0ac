"""The patient page's advance directives (Mental Healthcare Act 2017, ss5–13): shown first, above
the alerts, with what the directive refuses and whom it names; absent for a patient without one
and for a viewer who may not see it. The nominated representative shows among the contacts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from patient_helpers import World, advance_directive, patient_settings, seed_highest_risk
from web_helpers import csrf, sign_in

from fhir_gateway.app import create_app
from fhir_gateway.context import SYSTEM
from fhir_gateway.privacy import MHCA_SYSTEM
from fhir_gateway.security import TokenCaller
from fhir_gateway.services import resources
from fhir_gateway.web._patient_page import patient_page


@pytest.fixture
def world_client(database, database_url) -> Iterator[tuple[World, TestClient]]:  # type: ignore[no-untyped-def]
    app = create_app(patient_settings(database_url), database=database)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        world = seed_highest_risk(database, app)
        assert sign_in(client, "cm").status_code == 303
        yield world, client


def _store(world: World, doc: dict[str, Any]) -> None:
    with world.database.session() as session:
        resources.create(session, doc["resourceType"], doc, SYSTEM)


def _directive(world: World, representative: str) -> dict[str, Any]:
    return advance_directive(world.patient_id, representative)


def _page(web: TestClient, world: World) -> str:
    answer = web.get(f"/web/patients/{world.patient_id}")
    assert answer.status_code == 200, answer.text
    return answer.text


def test_a_directive_shows_first_with_its_refusal_and_representative(world_client):
    world, web = world_client
    spouse = world.all("RelatedPerson")[0]["id"]
    _store(world, _directive(world, f"RelatedPerson/{spouse}"))
    page = _page(web, world)
    assert page.index("Advance directives") < page.index("Alerts and risk signals")
    section = page[page.index("Advance directives") : page.index("Alerts and risk signals")]
    assert "In force" in section and "Refuses: ECT" in section
    assert "Nominated representative: John Doe" in section
    assert "lacks capacity" in section and "s9" in section
    assert 'href="https://records.example.org/directive.pdf"' in section
    contacts = page[page.index('id="contacts-h"') :]
    row = contacts[contacts.index("John Doe") : contacts.index("</tr>", contacts.index("John Doe"))]
    assert "Proposed nominated representative" in row


def test_a_recorded_capacity_assessment_is_quoted(world_client):
    world, web = world_client
    spouse = world.all("RelatedPerson")[0]["id"]
    _store(world, _directive(world, f"RelatedPerson/{spouse}"))
    _store(
        world,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": MHCA_SYSTEM, "code": "capacity"}]},
            "subject": {"reference": f"Patient/{world.patient_id}"},
            "effectiveDateTime": "2025-02-01T09:00:00Z",
            "valueBoolean": True,
        },
    )
    section = _page(web, world)
    assert "Latest capacity assessment (Sat 1 Feb): the patient has capacity" in section


def test_a_patient_without_a_directive_has_no_such_section(world_client):
    world, web = world_client
    page = _page(web, world)
    assert "Advance directives" not in page
    assert "nominated representative" not in page.lower()


def test_a_viewer_who_may_not_see_the_directive_does_not_see_it(world_client):
    world, _ = world_client
    spouse = world.all("RelatedPerson")[0]["id"]
    _store(world, _directive(world, f"RelatedPerson/{spouse}"))
    no_consents = TokenCaller(
        client_id="user:eve",
        role="ehr",
        scopes=frozenset({"system/Patient.rs", "system/RelatedPerson.rs", "system/Flag.rs"}),
    )
    settings = patient_settings("sqlite://")
    page = world.database.read(patient_page, no_consents, settings, world.patient_id)
    assert page is not None and page.directives.directives == []
    assert "ECT" not in repr(page)


def test_a_confirmed_representative_and_a_written_directive(world_client):
    world, web = world_client
    spouse = world.all("RelatedPerson")[0]
    role = {"coding": [{"system": MHCA_SYSTEM, "code": "nominated-representative"}]}
    with world.database.session() as session:
        confirmed = {**spouse, "relationship": [*spouse.get("relationship", []), role]}
        resources.update(session, "RelatedPerson", spouse["id"], confirmed, SYSTEM)
    written = {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "42348-3"}]},
        "subject": {"reference": f"Patient/{world.patient_id}"},
        "date": "2024-11-05T10:00:00Z",
        "content": [{"attachment": {"url": "https://records.example.org/written.pdf"}}],
    }
    _store(world, written)
    revoked = {**_directive(world, f"RelatedPerson/{spouse['id']}"), "status": "inactive"}
    _store(world, revoked)
    page = _page(web, world)
    section = page[page.index("Advance directives") : page.index("Alerts and risk signals")]
    assert section.index("https://records.example.org/written.pdf") < section.index("Revoked")
    assert "Refuses: ECT" in section  # a revoked directive still says what it said
    contacts = page[page.index('id="contacts-h"') :]
    row = contacts[contacts.index("John Doe") : contacts.index("</tr>", contacts.index("John Doe"))]
    assert "Nominated representative (MHCA s14)" in row and "Proposed" not in row
    assert "nominated-representative" not in row


def test_the_case_manager_confirms_the_proposed_representative_on_the_page(world_client):
    world, web = world_client
    spouse = world.all("RelatedPerson")[0]["id"]
    _store(world, _directive(world, f"RelatedPerson/{spouse}"))
    page = _page(web, world)
    action = f"/web/patients/{world.patient_id}/representative/{spouse}"
    assert f'action="{action}"' in page
    token = csrf(page)
    answer = web.post(action, data={"csrf_token": token})
    assert answer.status_code == 303, answer.text
    page = web.get(answer.headers["location"]).text
    assert "Nominated representative confirmed" in page
    contacts = page[page.index('id="contacts-h"') :]
    row = contacts[contacts.index("John Doe") : contacts.index("</tr>", contacts.index("John Doe"))]
    assert "Nominated representative (MHCA s14)" in row and f'action="{action}"' not in row
    [team] = world.all("CareTeam", ("patient", f"Patient/{world.patient_id}"))
    assert f"RelatedPerson/{spouse}" in str(team["participant"])
    other = web.post(f"/web/patients/nobody/representative/{spouse}", data={"csrf_token": token})
    assert other.status_code == 404  # the person is not that patient's
