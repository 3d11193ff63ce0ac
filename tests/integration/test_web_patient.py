"""The patient page through the TestClient: what it shows of the highest-risk patient, recording a
Part 2 consent (the waiting referral goes to its partner), its checks (bad dates, no signature,
an oversize or wrong-type document: a clear error on the form, never a 500), acknowledging and
resolving an alert, and rights (a partner cannot open it; a patient the user may not see answers
as one that does not exist; what the viewer may not see is not even counted)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from patient_helpers import PARTNER, PDF, World, patient_settings, seed_highest_risk
from web_helpers import csrf, sign_in

from fhir_gateway.app import create_app
from fhir_gateway.contacts import CARING_CONTACT, CONTACTS_SYSTEM
from fhir_gateway.context import SYSTEM
from fhir_gateway.security import TokenCaller
from fhir_gateway.services import resources
from fhir_gateway.web._patient_forms import MAX_DOCUMENT_BYTES
from fhir_gateway.web._patient_page import patient_page
from fhir_gateway.web._patient_risk import RISK_CATEGORY_SYSTEM
from fhir_gateway.web._patient_routes import UPLOAD_BODY_LIMIT


@pytest.fixture
def world_client(database, database_url) -> Iterator[tuple[World, TestClient]]:  # type: ignore[no-untyped-def]
    app = create_app(patient_settings(database_url), database=database)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        world = seed_highest_risk(database, app)
        assert sign_in(client, "cm").status_code == 303
        yield world, client


def _page(web: TestClient, world: World) -> str:
    page = web.get(f"/web/patients/{world.patient_id}")
    assert page.status_code == 200, page.text
    return page.text


def _part2_fields(world: World, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "discloser": "Organization/care-coordination",
        "recipients": "named",
        "partner": [PARTNER],
        "purpose": ["TREAT", "COC"],
        "data_scope": "My alcohol treatment records needed to arrange my care after discharge.",
        "signed_on": "2025-03-17",
        "signed_by": f"Patient/{world.patient_id}",
        "expires": "2026-03-17",
    }
    return {k: v for k, v in {**fields, **changes}.items() if v is not None}


def _post_part2(
    web: TestClient,
    world: World,
    document: tuple[str, bytes, str] | None = ("signed-consent.pdf", PDF, "application/pdf"),
    **changes: Any,
) -> Any:
    form_page = web.get(f"/web/patients/{world.patient_id}/consents/part2")
    assert form_page.status_code == 200
    data = {**_part2_fields(world, **changes), "csrf_token": csrf(form_page.text)}
    files = {"document": document} if document else {"unused": ("", b"", "text/plain")}
    return web.post(f"/web/patients/{world.patient_id}/consents/part2", data=data, files=files)


def test_the_highest_risk_patient_shows_the_alert_diagnosis_and_hospital_visits(world_client):
    world, web = world_client
    page = _page(web, world)
    banner = page[page.index('id="alerts-h"') : page.index('id="diagnoses-h"')]
    assert "Crisis" in banner and "High priority" in banner and "Contact the patient now" in banner
    assert "yesterday at 10:00 pm" in banner  # the ED visit, in Chicago time, in words
    diagnoses = page[page.index('id="diagnoses-h"') : page.index('id="visits-h"')]
    assert "Suicide attempt" in diagnoses and "T14.91" in diagnoses
    assert "Alcohol dependence" in diagnoses and "Part 2 record" in diagnoses
    visits = page[page.index('id="visits-h"') : page.index('id="contacts-h"')]
    assert "Emergency department visit" in visits and "Hospital stay" in visits
    assert "day 6 after the discharge of Mon 10 Mar" in visits and "9 nights" in visits
    assert "John Doe" in page and "Spouse" in page  # family from NK1
    assert "Case manager: Care Coordination Team" in page  # the plan's care team
    consents = page[page.index('id="consents-h"') : page.index('id="plans-h"')]
    assert "Prairie Recovery Services" in consents and "Addiction treatment programme" in consents
    assert f'href="/web/referrals/{world.waiting_task}"' in page
    timeline = page[page.index('id="timeline-h"') :]
    assert "STMARYS" in timeline and "Patient came to the emergency department" in timeline
    for reference in ("Encounter/", "Organization/", "Patient/", "CarePlan/"):
        assert reference not in page[page.index("<main") :], f"{reference}… instead of a name"


def test_recording_a_part2_consent_sends_the_waiting_referral_to_its_partner(world_client):
    world, web = world_client
    assert world.read(f"Task/{world.waiting_task}")["status"] == "draft"
    answer = _post_part2(web, world)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].startswith(
        f"/web/patients/{world.patient_id}?done=part2&sent=2"
    )
    task = world.read(f"Task/{world.waiting_task}")
    assert task["status"] == "requested" and "businessStatus" not in task
    (consent,) = world.all("Consent")
    assert consent["sourceAttachment"]["contentType"] == "application/pdf"
    assert base64.b64decode(consent["sourceAttachment"]["data"]) == PDF
    assert consent["performer"] == [{"reference": f"Patient/{world.patient_id}"}]
    assert consent["provision"]["period"]["end"] == "2026-03-17"

    page = web.get(answer.headers["location"]).text
    assert "Part 2 consent recorded. 2 referrals waiting for it went to the partner." in page
    consents = page[page.index('id="consents-h"') : page.index('id="plans-h"')]
    assert "In force" in consents and "<strong>Yes</strong>" in consents
    timeline = page[page.index('id="timeline-h"') :]
    assert "<strong>cm</strong>: Recorded a Part 2 consent for Prairie Recovery Services" in (
        timeline
    )
    document = web.get(f"/web/patients/{world.patient_id}/consents/{consent['id']}/document")
    assert document.status_code == 200 and document.content == PDF
    assert document.headers["content-type"] == "application/pdf"


BAD_FORMS = {  # every rule has its unit test (tests/unit/web/test_patient_forms.py); here, the page
    "an impossible signature date": (
        {"signed_on": "2025-02-30"},
        "Enter the date the form was signed as a real date",
    ),
    "an expiry that is not a date": ({"expires": "next spring"}, "as a real date"),
    "no signature": ({"signed_by": None}, "Say who signed"),
    "no partner named": ({"partner": None}, "Choose at least one partner"),
}


def test_a_wrong_consent_form_comes_back_with_what_to_fix(world_client):
    # Each wrong form in turn on the same patient: a refused form changes nothing (asserted after
    # each), so every case starts where the first did.
    world, web = world_client
    for case, (changes, message) in sorted(BAD_FORMS.items()):
        answer = _post_part2(web, world, **changes)
        assert answer.status_code == 422, (case, answer.text)
        assert message in answer.text and "The consent was not recorded" in answer.text, case
        assert "Traceback" not in answer.text, case
        if "data_scope" not in changes:  # what was typed is kept
            assert "My alcohol treatment records" in answer.text, case
        assert world.all("Consent") == [], case
        assert world.read(f"Task/{world.waiting_task}")["status"] == "draft", case


WRONG_DOCUMENTS = {
    "missing": (None, "Attach the signed consent form"),
    "not-a-document": (
        ("consent.pdf", b"just some text, not a PDF", "application/pdf"),
        "PDF, PNG or JPEG",
    ),
    "empty": (("empty.pdf", b"", "application/pdf"), "The attached file is empty"),
    "over-the-limit": (
        ("huge.pdf", b"%PDF-" + b"0" * MAX_DOCUMENT_BYTES, "application/pdf"),
        "the limit is 4 MB",
    ),
}


def test_the_signed_document_is_required_type_checked_and_bounded(world_client):
    world, web = world_client
    for case, (document, message) in WRONG_DOCUMENTS.items():  # a refusal changes nothing
        answer = _post_part2(web, world, document=document)
        assert answer.status_code == 422 and message in answer.text, case
        assert world.all("Consent") == [], case


def test_a_body_far_over_the_limit_is_refused_before_it_is_read(world_client):
    world, web = world_client
    huge = ("scan.pdf", b"%PDF-" + b"0" * UPLOAD_BODY_LIMIT, "application/pdf")
    answer = _post_part2(web, world, document=huge)
    assert answer.status_code == 413
    assert "Too large" in answer.text and "at most 4 MB" in answer.text
    assert world.all("Consent") == []


def test_a_family_involvement_consent_lets_the_spouse_be_involved(world_client):
    world, web = world_client
    spouse = world.all("RelatedPerson")[0]["id"]
    form_page = web.get(f"/web/patients/{world.patient_id}/consents/family")
    assert "John Doe" in form_page.text
    answer = web.post(
        f"/web/patients/{world.patient_id}/consents/family",
        data={
            "csrf_token": csrf(form_page.text),
            "related_person": f"RelatedPerson/{spouse}",
            "data_scope": "My appointments and my safety plan.",
            "signed_on": "2025-03-17",
        },
        files={"document": ("family.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png")},
    )
    assert answer.status_code == 303, answer.text
    page = web.get(answer.headers["location"]).text
    family = page[page.index("<caption>Family involvement") :]
    assert "John Doe" in family and "<strong>Yes</strong>" in family and "until revoked" in page


def _alert_form(web: TestClient, world: World, verb: str, note: str, version: str) -> Any:
    token = csrf(web.get(f"/web/patients/{world.patient_id}").text)
    return web.post(
        f"/web/patients/{world.patient_id}/alerts/{world.crisis_flag}/{verb}",
        data={"csrf_token": token, "note": note, "version": version},
    )


def test_an_alert_is_acknowledged_then_resolved_with_notes_and_who_did_it(world_client):
    world, web = world_client
    version = world.read(f"Flag/{world.crisis_flag}")["meta"]["versionId"]
    answer = _alert_form(
        web, world, "acknowledge", "Called Jane: safe, seeing Dr Smith today.", version
    )
    assert answer.status_code == 303, answer.text
    flag = world.read(f"Flag/{world.crisis_flag}")
    assert flag["status"] == "active"
    page = web.get(answer.headers["location"]).text
    banner = page[page.index('id="alerts-h"') : page.index('id="diagnoses-h"')]
    assert "Acknowledged</strong> by cm" in banner and "seeing Dr Smith today" in banner

    answer = _alert_form(
        web, world, "resolve", "Seen by Dr Smith; crisis plan updated.", flag["meta"]["versionId"]
    )
    assert answer.status_code == 303
    flag = world.read(f"Flag/{world.crisis_flag}")
    assert flag["status"] == "inactive" and flag["period"]["end"]
    page = web.get(answer.headers["location"]).text
    assert "No active alerts or risk signals." in page
    timeline = page[page.index('id="timeline-h"') :]
    assert "<strong>cm</strong>: Resolved the alert" in timeline
    assert "<strong>cm</strong>: Acknowledged the alert" in timeline
    targets = {p["target"][0]["reference"].split("/_history")[0] for p in world.all("Provenance")}
    assert f"Flag/{world.crisis_flag}" in targets


def test_an_alert_without_a_note_or_changed_meanwhile_is_left_as_it_was(world_client):
    world, web = world_client
    version = world.read(f"Flag/{world.crisis_flag}")["meta"]["versionId"]
    empty = _alert_form(web, world, "resolve", "   ", version)
    assert empty.status_code == 422 and "Write a note" in empty.text
    stale = _alert_form(web, world, "resolve", "Seen today.", str(int(version) - 1 or 99))
    assert stale.status_code == 412 and "Changed meanwhile" in stale.text
    assert world.read(f"Flag/{world.crisis_flag}")["status"] == "active"
    other = web.post(  # an alert of this patient only, through this patient's page
        f"/web/patients/no-such-patient/alerts/{world.crisis_flag}/resolve",
        data={"csrf_token": csrf(web.get("/web/login").text), "note": "x", "version": version},
    )
    assert other.status_code == 404 and "no such open alert" in other.text
    odd = web.get(f"/web/patients/{world.patient_id}?done=part2&sent=lots")
    assert odd.status_code == 200 and "Part 2 consent recorded." in odd.text


def test_a_partner_cannot_open_the_patient_page_nor_record_a_consent(world_client):
    world, web = world_client
    web.post("/web/logout", data={"csrf_token": csrf(web.get("/web/login").text)})
    assert sign_in(web, "prairie").status_code == 303
    for path in ("", "/consents/part2"):
        page = web.get(f"/web/patients/{world.patient_id}{path}")
        assert page.status_code == 403 and "Not allowed" in page.text
        assert "Jane" not in page.text and "Suicide" not in page.text
    token = csrf(web.get("/web/inbox").text)
    posted = web.post(
        f"/web/patients/{world.patient_id}/consents/part2",
        data={**_part2_fields(world), "csrf_token": token},
        files={"document": ("c.pdf", PDF, "application/pdf")},
    )
    assert posted.status_code == 403 and world.all("Consent") == []


def test_a_patient_the_user_may_not_see_answers_as_one_that_does_not_exist(world_client):
    world, web = world_client
    missing = web.get("/web/patients/no-such-patient")
    with world.database.session() as session:
        resources.delete(session, "Patient", world.patient_id, SYSTEM)
    hidden = web.get(f"/web/patients/{world.patient_id}")
    assert missing.status_code == hidden.status_code == 404
    assert missing.text.replace("no-such-patient", "X") == hidden.text.replace(
        world.patient_id, "X"
    )
    form = web.get(f"/web/patients/{world.patient_id}/consents/part2")
    assert form.status_code == 404 and "Jane" not in form.text


def test_the_page_shows_only_what_its_reader_may_see_not_even_a_count(world_client):
    world, _ = world_client
    settings = patient_settings("sqlite://")
    outsider = TokenCaller(
        client_id="user:eve",
        role="ehr",
        organization="Organization/clinic",
        scopes=frozenset({"system/*.rs"}),
    )
    page = world.database.read(patient_page, outsider, settings, world.patient_id)
    assert page is not None
    assert [d.name for d in page.diagnoses] == ["Suicide attempt"]  # the Part 2 one is absent
    assert "Alcohol" not in repr(page) and "Prairie" not in repr(page)
    no_patients = TokenCaller(
        client_id="user:eve", role="ehr", scopes=frozenset({"system/Task.rs"})
    )
    assert world.database.read(patient_page, no_patients, settings, world.patient_id) is None
    assert world.database.read(patient_page, outsider, settings, "no-such-patient") is None


def _store(world: World, doc: dict[str, Any]) -> None:
    with world.database.session() as session:
        resources.create(session, doc["resourceType"], doc, SYSTEM)


def test_a_new_kind_of_alert_or_risk_signal_shows_without_a_change_to_the_page(world_client):
    world, web = world_client
    patient = {"reference": f"Patient/{world.patient_id}"}
    _store(  # an alert from a part of the gateway this page does not know
        world,
        {
            "resourceType": "Flag",
            "status": "active",
            "code": {
                "coding": [{"system": "urn:example:adherence", "code": "refill-gap"}],
                "text": "Antipsychotic refill 12 days late",
            },
            "subject": patient,
            "period": {"start": "2025-03-17T13:00:00Z"},
        },
    )
    quantity = {"value": 0.62, "unit": "1"}
    signals = [
        ({"valueQuantity": quantity, "code": {"text": "Antipsychotic days covered"}}, "risk"),
        ({"valueInteger": 22, "code": {"text": "PHQ-9 total"}}, "H"),
        ({"valueInteger": 3, "code": {"text": "GAD-7 total"}}, None),  # normal: not a signal
    ]
    for value, mark in signals:
        doc: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "subject": patient,
            "effectiveDateTime": "2025-03-17T08:00:00-05:00",
            **value,
        }
        if mark == "risk":
            doc["category"] = [
                {"coding": [{"system": RISK_CATEGORY_SYSTEM, "code": "risk-signal"}]}
            ]
        elif mark:
            doc["interpretation"] = [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                            "code": mark,
                            "display": "High",
                        }
                    ]
                }
            ]
        _store(world, doc)
    page = _page(web, world)
    banner = page[page.index('id="alerts-h"') : page.index('id="diagnoses-h"')]
    assert "Antipsychotic refill 12 days late" in banner and "Refill gap" in banner
    assert banner.index("Crisis") < banner.index("Refill gap")  # a crisis comes first
    assert "<td>Antipsychotic days covered</td><td>0.62</td>" in banner
    assert "<td>PHQ-9 total</td><td>22</td><td>High</td>" in banner
    assert "GAD-7" not in banner


def test_a_tpo_consent_names_the_class_of_treating_providers(world_client):
    world, web = world_client
    answer = _post_part2(
        web, world, recipients="treating", partner=None, purpose=["TREAT", "HPAYMT", "HOPERAT"]
    )
    assert answer.status_code == 303, answer.text
    (consent,) = world.all("Consent")
    (actor,) = consent["provision"]["actor"]
    assert actor["reference"]["identifier"]["value"] == "treating-providers"
    assert {p["code"] for p in consent["provision"]["purpose"]} == {"TREAT", "HPAYMT", "HOPERAT"}
    page = web.get(answer.headers["location"]).text
    on_file = page[page.index("<caption>Consents on file") :]
    assert "every treating provider of the patient" in on_file
    assert "treatment, healthcare payment, healthcare operations" in on_file
    # the treating partner holding the patient's referral is reached by the class
    assert "<td>Prairie Recovery Services</td><td><strong>Yes</strong>" in page


# -- caring contacts: what went, what is still to come; stopped when the patient asks ------------


def _caring_request(patient_id: str, n: int, status: str, when: str) -> dict[str, Any]:
    return {
        "resourceType": "CommunicationRequest",
        "id": f"caring-{n}",
        "status": status,
        "category": [{"coding": [{"system": CONTACTS_SYSTEM, "code": CARING_CONTACT}]}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "recipient": [{"reference": f"Patient/{patient_id}"}],
        "occurrenceDateTime": when,
        "payload": [{"contentString": "We are thinking of you."}],
    }


def test_the_case_manager_stops_the_caring_contacts_the_patient_no_longer_wants(world_client):  # type: ignore[no-untyped-def]
    world, web = world_client

    def seed(session) -> None:  # type: ignore[no-untyped-def]
        for n, (status, when) in enumerate(
            [
                ("completed", "2025-03-14T15:00:00Z"),
                ("active", "2025-03-21T15:00:00Z"),
                ("active", "2025-03-28T15:00:00Z"),
            ]
        ):
            doc = _caring_request(world.patient_id, n, status, when)
            resources.update(session, "CommunicationRequest", doc["id"], doc, SYSTEM)

    world.database.write(seed)
    page = web.get(f"/web/patients/{world.patient_id}")
    assert page.status_code == 200
    assert "Caring contacts" in page.text and "1 sent, 2 still to come" in page.text
    assert "Stop caring contacts" in page.text
    answer = web.post(
        f"/web/patients/{world.patient_id}/caring-contacts/stop",
        data={"csrf_token": csrf(page.text)},
    )
    assert answer.status_code == 303
    after = web.get(answer.headers["location"]).text
    assert "Caring contacts stopped" in after and "1 sent, 0 still to come, 2 stopped" in after
    assert "Stop caring contacts" not in after
    assert [world.read(f"CommunicationRequest/caring-{n}")["status"] for n in range(3)] == [
        "completed",
        "revoked",
        "revoked",
    ]
    refused = web.post(f"/web/patients/{world.patient_id}/caring-contacts/stop", data={})
    assert refused.status_code in (400, 403)  # no CSRF token: nothing changes
