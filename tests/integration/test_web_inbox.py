"""The partner inbox and the case-manager worklist through the TestClient: what each person sees,
and that every action is the same Task workflow as the API (rights, state machine, consequences)."""

from __future__ import annotations

import pytest
from web_helpers import csrf, seed_caseload, sign_in, version_of, web_client

from fhir_gateway.context import SYSTEM
from fhir_gateway.services import resources
from fhir_gateway.web import REJECT_SYSTEM


@pytest.fixture
def web(database, database_url):  # type: ignore[no-untyped-def]
    seed_caseload(database)
    with web_client(database, database_url) as client:
        yield client


def _task(database, task_id: str) -> dict:  # type: ignore[no-untyped-def]
    with database.session(readonly=True) as session:
        return resources.read(session, "Task", task_id, SYSTEM).content


def _act(web, task_id: str, action: str, **fields: str):  # type: ignore[no-untyped-def]
    page = web.get("/web/inbox").text
    data = {"csrf_token": csrf(page), "version": version_of(page, task_id), **fields}
    return web.post(f"/web/inbox/{task_id}/{action}", data=data)


def test_a_partner_sees_only_the_minimum_of_the_patient(web):
    sign_in(web, "ann")
    page = web.get("/web/inbox").text
    assert (
        "New (2)" in page
        and "Jane Doe" in page
        and "born 3 Feb 1980" in page
        and "555-0100" in page
    )
    assert "MRN-SECRET-42" not in page and "female" not in page


def test_accept_in_progress_complete_updates_the_task_and_closes_the_loop(web, database):
    sign_in(web, "ann")
    assert _act(web, "t1", "accept").status_code == 303
    assert _task(database, "t1")["status"] == "accepted"
    assert "Referral accepted." in web.get("/web/inbox?done=accept").text
    assert _act(web, "t1", "start").status_code == 303
    assert _task(database, "t1")["status"] == "in-progress"
    done = _act(
        web, "t1", "complete", result="service-provided", note="Housing found; moved in on day 9"
    )
    assert done.status_code == 303
    task = _task(database, "t1")
    assert task["status"] == "completed"
    assert task["output"][0]["valueCodeableConcept"]["coding"][0]["code"] == "service-provided"
    assert task["output"][1]["valueString"] == "Housing found; moved in on day 9"
    with database.session(
        readonly=True
    ) as session:  # the workflow's consequence, as through the API
        assert (
            resources.read(session, "ServiceRequest", "sr1", SYSTEM).content["status"]
            == "completed"
        )
    closed = web.get("/web/inbox?state=closed").text
    assert "The service was provided; Housing found; moved in on day 9" in closed


def test_accepting_an_unassigned_referral_claims_it(web, database):
    sign_in(web, "ann")
    assert _act(web, "t2", "accept").status_code == 303
    task = _task(database, "t2")
    assert task["status"] == "accepted" and task["owner"]["reference"] == "Organization/harbor"


def test_a_stale_page_cannot_overwrite_a_newer_change(web):
    sign_in(web, "ann")
    page = web.get("/web/inbox").text
    data = {"csrf_token": csrf(page), "version": version_of(page, "t1")}
    assert web.post("/web/inbox/t1/accept", data=data).status_code == 303
    again = web.post("/web/inbox/t1/reject", data={**data, "reason": "no-capacity"})
    assert again.status_code == 412
    assert "Changed meanwhile" in again.text and "Traceback" not in again.text


def test_reject_needs_a_coded_reason_and_stores_it(web, database):
    sign_in(web, "ann")
    missing = _act(web, "t1", "reject", reason="")
    assert missing.status_code == 400 and "Choose a reason" in missing.text
    assert _task(database, "t1")["status"] == "requested"
    assert (
        _act(web, "t1", "reject", reason="no-capacity", note="waiting list full").status_code == 303
    )
    task = _task(database, "t1")
    assert task["status"] == "rejected"
    assert task["statusReason"]["coding"][0] == {
        "system": REJECT_SYSTEM,
        "code": "no-capacity",
        "display": "No capacity to take the referral",
    }
    assert "waiting list full" in task["statusReason"]["text"]


def test_an_illegal_transition_is_refused_by_the_workflow_with_a_readable_message(web, database):
    sign_in(web, "ann")
    response = _act(
        web, "t1", "complete", result="service-provided"
    )  # requested → completed is not allowed
    assert response.status_code == 422
    assert "is not allowed" in response.text and "Traceback" not in response.text
    assert _task(database, "t1")["status"] == "requested"


def test_a_partner_cannot_act_on_a_referral_of_another_partner(web, database):
    sign_in(web, "pat")
    page = web.get("/web/inbox").text
    assert "New (1)" in page  # only the open one it is eligible for, not harbor's t1
    response = web.post("/web/inbox/t1/accept", data={"csrf_token": csrf(page), "version": "1"})
    assert response.status_code == 404
    assert _task(database, "t1")["status"] == "requested"


def test_an_overdue_referral_is_highlighted(database, database_url):
    seed_caseload(database, deadline="2020-01-01")
    with web_client(database, database_url) as web:
        sign_in(web, "ann")
        assert 'class="referral overdue"' in web.get("/web/inbox").text
        sign_in(web, "cm")
        board = web.get("/web/worklist").text
        # both referrals need someone (overdue, or flagged late / unassigned by the monitors)
        assert board.count('<tr class="kind-') == 2 and board.count("due Wed 1 Jan 2020") == 2


def test_the_patient_page_shows_a_rejection_in_the_timeline(web):
    sign_in(web, "ann")
    _act(web, "t1", "reject", reason="not-eligible")
    sign_in(web, "cm")
    patient = web.get("/web/patients/p1").text
    assert (
        "Referral for Housing support (Harbor Housing): waiting for the partner" in patient
        and "<strong>Harbor Housing</strong>: Referral for Housing support" in patient
        and "declined by the partner" in patient
        and "Care plan made: Aftercare plan" in patient
    )
    missing = web.get("/web/patients/nobody")
    assert missing.status_code == 404 and "There is no patient nobody." in missing.text


def test_the_worklist_shows_readmission_and_crisis_alerts_crisis_first(web, database):
    from fhir_gateway.monitors import MONITOR_FLAGS

    with database.session() as session:
        for fid, kind in (("f1", "crisis"), ("f2", "readmission")):
            resources.update(
                session,
                "Flag",
                fid,
                {
                    "resourceType": "Flag",
                    "id": fid,
                    "status": "active",
                    "meta": {"tag": [{"system": MONITOR_FLAGS, "code": kind}]},
                    "code": {"text": f"{kind} after discharge"},
                    "subject": {"reference": "Patient/p1"},
                    "period": {"start": "2025-03-12T08:00:00Z"},
                },
                SYSTEM,
            )
    sign_in(web, "cm")
    board = web.get("/web/worklist").text
    assert "crisis after discharge" in board and "readmission after discharge" in board
    assert board.index('<tr class="kind-crisis">') < board.index('<tr class="kind-readmission">')


def test_the_worklist_lists_unassigned_referrals_with_the_reason(web, database):
    with database.session() as session:  # a referral for a service no partner offers
        resources.update(
            session,
            "ServiceRequest",
            "sr3",
            {
                "resourceType": "ServiceRequest",
                "id": "sr3",
                "status": "active",
                "intent": "order",
                "code": {
                    "coding": [
                        {
                            "system": "http://fhir-gateway.org/fhir/CodeSystem/referral-service",
                            "code": "crisis-bed",
                        }
                    ],
                    "text": "Crisis bed",
                },
                "subject": {"reference": "Patient/p1"},
                "requester": {"reference": "Organization/care-coordination"},
            },
            SYSTEM,
        )
        resources.update(
            session,
            "Task",
            "t3",
            {
                "resourceType": "Task",
                "id": "t3",
                "status": "requested",
                "intent": "order",
                "code": {
                    "coding": [
                        {"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}
                    ]
                },
                "focus": {"reference": "ServiceRequest/sr3"},
                "for": {"reference": "Patient/p1"},
                "requester": {"reference": "Organization/care-coordination"},
            },
            SYSTEM,
        )
    sign_in(web, "cm")
    board = web.get("/web/worklist").text
    assert '<tr class="kind-unassigned">' in board and "Jane Doe" in board
    assert "No partner: no partner in the directory offers this service (code crisis-bed)." in board
    assert 'href="/web/referrals/t3/partner"' in board
