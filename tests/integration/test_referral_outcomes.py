"""Coded referral outcomes (the gateway's referral-outcome and referral-reject-reason code
systems): a code the system does not hold, or one that does not fit the Task's status, is refused
with the codes that fit, on the API as in the inbox; a partner that could not contact the patient
raises the case manager's work item, through the partner's own write."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from inbox_helpers import api_headers, read, seed_referral_context
from security_helpers import secure_client
from web_helpers import csrf, seed_caseload, sign_in, version_of, web_client

from fhir_gateway.monitors import MONITOR_FLAGS
from fhir_gateway.workflow import OUTCOME_SYSTEM, REJECT_SYSTEM

UNABLE = f"{MONITOR_FLAGS}|unable-to-contact"


@pytest.fixture
def api(database, database_url) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:  # type: ignore[no-untyped-def]
    with secure_client(database, database_url) as client:
        seed_caseload(database)
        seed_referral_context(database)
        yield client, api_headers(client, database)


def _put(client: TestClient, headers: dict[str, str], task_id: str, **changes: Any) -> Any:
    task = client.get(f"/Task/{task_id}", headers=headers).json()
    version = task["meta"]["versionId"]
    return client.put(
        f"/Task/{task_id}",
        json={**task, **changes},
        headers={**headers, "If-Match": f'W/"{version}"'},
    )


def _reason(system: str, code: str, text: str = "") -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}], **({"text": text} if text else {})}


def _problem(response: Any) -> str:
    return " ".join(i.get("diagnostics", "") for i in response.json().get("issue", []))


def _flags(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    bundle = client.get(f"/Flag?_tag={UNABLE}", headers=headers).json()
    found = [e["resource"] for e in bundle.get("entry", [])]
    return [f for f in found if f["resourceType"] == "Flag" and f["status"] == "active"]


def test_a_code_the_system_does_not_hold_is_refused_with_the_codes_that_fit(api):
    client, headers = api
    harbor = headers["harbor"]
    bogus = _put(
        client, harbor, "t1", status="rejected", statusReason=_reason(REJECT_SYSTEM, "busy")
    )
    assert bogus.status_code == 400
    assert "'busy' is not a code of" in _problem(bogus) and "no-capacity" in _problem(bogus)
    assert bogus.json()["issue"][0]["expression"] == ["Task.statusReason"]
    misplaced = _put(
        client, harbor, "t1", status="rejected", statusReason=_reason(OUTCOME_SYSTEM, "moved-away")
    )
    assert misplaced.status_code == 400 and "not one that is rejected" in _problem(misplaced)
    assert read_status(client, headers, "t1") == "requested"
    assert _put(client, harbor, "t1", status="accepted").status_code == 200
    result = _put(
        client,
        harbor,
        "t1",
        status="completed",
        output=[
            {"type": {"text": "Outcome"}, "valueCodeableConcept": _reason(OUTCOME_SYSTEM, "cured")}
        ],
    )
    assert result.status_code == 400 and "'cured' is not an outcome" in _problem(result)
    # another code system is the writer's business
    theirs = _put(
        client,
        harbor,
        "t1",
        status="failed",
        statusReason=_reason("http://partner.example/reasons", "x42", "Lost to follow-up"),
    )
    assert theirs.status_code == 200, theirs.text


def read_status(client: TestClient, headers: dict[str, dict[str, str]], task_id: str) -> str:
    return str(client.get(f"/Task/{task_id}", headers=headers["cm"]).json()["status"])


def test_unable_to_contact_over_the_api_raises_the_case_managers_work_item(api):
    client, headers = api
    harbor = headers["harbor"]
    assert _flags(client, headers["cm"]) == []
    assert _put(client, harbor, "t1", status="accepted").status_code == 200
    closed = _put(
        client,
        harbor,
        "t1",
        status="failed",
        statusReason=_reason(OUTCOME_SYSTEM, "unable-to-contact", "Three calls, no answer"),
    )
    assert closed.status_code == 200, closed.text
    (flag,) = _flags(client, headers["cm"])
    assert flag["subject"] == {"reference": "Patient/p1"}
    assert "Harbor Housing could not contact the patient" in flag["code"]["text"]
    assert "Three calls, no answer" in flag["code"]["text"]
    assert {"reference": "Task/t1"} in [e.get("valueReference") for e in flag.get("extension", [])]
    assert client.get(f"/Flag/{flag['id']}", headers=harbor).status_code == 403  # not a partner's
    # the workflow's usual consequence: the request waits for the case manager
    assert client.get("/ServiceRequest/sr1", headers=headers["cm"]).json()["status"] == "on-hold"


def test_rejecting_because_the_patient_cannot_be_reached_raises_it_too(api):
    client, headers = api
    rejected = _put(
        client,
        headers["harbor"],
        "t1",
        status="rejected",
        statusReason=_reason(REJECT_SYSTEM, "unable-to-contact"),
    )
    assert rejected.status_code == 200, rejected.text
    assert len(_flags(client, headers["cm"])) == 1


def test_the_inbox_refuses_a_bad_code_with_a_readable_page(database, database_url):
    with web_client(database, database_url) as web:
        seed_caseload(database)
        sign_in(web, "ann")
        page = web.get("/web/inbox").text
        accepted = web.post(
            "/web/inbox/t1/accept",
            data={"csrf_token": csrf(page), "version": version_of(page, "t1")},
        )
        assert accepted.status_code == 303
        page = web.get("/web/inbox").text
        form = {"csrf_token": csrf(page), "version": version_of(page, "t1")}
        bad = web.post("/web/inbox/t1/close", data={**form, "reason": "vanished"})
        assert bad.status_code == 400
        assert "Choose why the referral could not be done" in bad.text
        assert "Unable to contact the patient" in bad.text and "Traceback" not in bad.text
        unknown = web.post("/web/inbox/t1/complete", data={**form, "result": ""})
        assert unknown.status_code == 400 and "Choose what came of the referral" in unknown.text
        assert read(database, "Task/t1")["status"] == "accepted"
