"""Referral Tasks through the REST API: the state machine, who may do what, the claim of an
unassigned Task, and the statusReason warning, as a client sees them."""

from __future__ import annotations

import itertools
import json
import threading

import httpx
import pytest
from fastapi.testclient import TestClient
from workflow_helpers import (
    CASE_MANAGER,
    FHIR,
    directory,
    install_test_callers,
    partner,
    put,
    read,
    referral,
)

from fhir_gateway.workflow._states import Side, is_legal, who_sets

STATUSES = [
    "draft",
    "requested",
    "accepted",
    "in-progress",
    "on-hold",
    "completed",
    "failed",
    "rejected",
    "cancelled",
    "entered-in-error",
]
PARTNERS = {"alpha": "Alpha Housing", "beta": "Beta Shelter", "gamma": "Gamma Homes"}


@pytest.fixture
def wf(app):  # type: ignore[no-untyped-def]
    install_test_callers(app)
    with TestClient(app, base_url="http://testserver") as client:
        directory(client, PARTNERS)
        yield client


def _change(task: dict, **fields) -> dict:  # type: ignore[type-arg]
    doc = {k: v for k, v in task.items() if k != "meta"}
    doc.update(fields)
    return doc


def _headers_for(side: Side) -> dict[str, str]:
    return partner("alpha") if side is Side.OWNER else CASE_MANAGER


LEGAL = [(a, b) for a, b in itertools.permutations(STATUSES, 2) if is_legal(a, b)]
ILLEGAL = [(a, b) for a, b in itertools.permutations(STATUSES, 2) if not is_legal(a, b)]


@pytest.mark.parametrize(("before", "after"), LEGAL)
def test_a_legal_transition_is_stored_for_the_side_that_may_make_it(wf, before, after) -> None:
    task = referral(wf, owner="alpha", status=before)
    for side in (Side.REQUESTER, Side.OWNER):
        response = wf.put(
            "/Task/t1",
            json=_change(task, status=after, statusReason={"text": "why"}),
            headers=_headers_for(side),
        )
        if side in who_sets(after):
            assert response.status_code == 200, response.text
            assert read(wf, "Task/t1")["status"] == after
            return
        assert response.status_code == 403, response.text
        assert after in response.json()["issue"][0]["diagnostics"]
    pytest.fail("nobody may set this status")


@pytest.mark.parametrize("before", sorted({before for before, _ in ILLEGAL}, key=STATUSES.index))
def test_an_illegal_transition_is_refused_with_the_allowed_next_states(wf, before) -> None:
    # A refused change leaves the Task as it was: every illegal next state is tried on one Task.
    task = referral(wf, owner="alpha", status=before)
    allowed = [s for s in STATUSES if is_legal(before, s)]
    for after in (a for b, a in ILLEGAL if b == before):
        response = wf.put("/Task/t1", json=_change(task, status=after), headers=FHIR)
        assert response.status_code == 422, (before, after, response.text)
        issue = response.json()["issue"][0]
        assert issue["code"] == "business-rule" and issue["expression"] == ["Task.status"]
        text = issue["diagnostics"]
        assert (
            all(s in text.split("may be:")[1] for s in allowed) if allowed else "final" in text
        ), (before, after, text)
        assert read(wf, "Task/t1")["status"] == before, (before, after)


def test_a_case_manager_creates_referrals_only_as_draft_or_requested(wf) -> None:
    referral(wf, owner="alpha")
    task = {**read(wf, "Task/t1"), "id": "t2"}
    task.pop("meta")
    assert (
        wf.put("/Task/t2", json={**task, "status": "accepted"}, headers=CASE_MANAGER).status_code
        == 422
    )
    assert wf.put("/Task/t2", json=task, headers=CASE_MANAGER).status_code == 201
    assert (
        wf.put("/Task/t3", json={**task, "id": "t3"}, headers=partner("alpha")).status_code == 403
    )


def test_the_owner_may_change_only_status_reason_business_status_and_output(wf) -> None:
    task = referral(wf, owner="alpha", status="accepted")
    refused = wf.put(
        "/Task/t1",
        json=_change(task, description="mine now", priority="urgent"),
        headers=partner("alpha"),
    )
    assert refused.status_code == 403
    assert refused.json()["issue"][0]["expression"] == ["Task.description", "Task.priority"]
    allowed = _change(
        task,
        status="in-progress",
        businessStatus={"text": "first visit booked"},
        output=[{"type": {"text": "appointment"}, "valueString": "2025-03-12 10:00"}],
    )
    assert wf.put("/Task/t1", json=allowed, headers=partner("alpha")).status_code == 200
    assert read(wf, "Task/t1")["businessStatus"]["text"] == "first visit booked"


def test_a_partner_that_does_not_own_the_task_cannot_touch_it(wf) -> None:
    task = referral(wf, owner="alpha", status="requested")
    assert (
        wf.put(
            "/Task/t1", json=_change(task, status="rejected"), headers=partner("beta")
        ).status_code
        == 403
    )
    ehr = {**FHIR, "X-Test-Role": "ehr"}
    assert (
        wf.put("/Task/t1", json=_change(task, status="cancelled"), headers=ehr).status_code == 403
    )
    assert wf.delete("/Task/t1", headers=partner("alpha")).status_code == 403
    assert read(wf, "Task/t1")["status"] == "requested"


def test_patch_and_transaction_entries_pass_the_same_rules(wf) -> None:
    referral(wf, owner="alpha", status="requested")
    patch = [{"op": "replace", "path": "/status", "value": "completed"}]
    response = wf.patch(
        "/Task/t1",
        json=patch,
        headers={**partner("alpha"), "Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 422
    task = read(wf, "Task/t1")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": _change(task, status="in-progress"),
                "request": {"method": "PUT", "url": "Task/t1"},
            }
        ],
    }
    assert wf.post("/", json=bundle, headers=FHIR).status_code == 422
    assert read(wf, "Task/t1")["status"] == "requested"


# -- the statusReason warning ---------------------------------------------------------------------


def test_a_rejection_without_a_reason_is_accepted_with_a_warning_everywhere(wf) -> None:
    task = referral(wf, owner="alpha", status="requested")
    response = wf.put(
        "/Task/t1",
        json=_change(task, status="rejected"),
        headers={**partner("alpha"), "Prefer": "return=OperationOutcome"},
    )
    assert response.status_code == 200
    issue = response.json()["issue"][0]
    assert (issue["severity"], issue["expression"]) == ("warning", ["Task.statusReason"])

    referral(wf, owner="alpha", status="accepted", task="t2", sr="sr2")
    task2 = read(wf, "Task/t2")
    plain = wf.put("/Task/t2", json=_change(task2, status="on-hold"), headers=partner("alpha"))
    assert (
        plain.status_code == 200 and plain.json()["status"] == "on-hold"
    )  # the body stays the resource
    header = json.loads(plain.headers["X-FHIR-OperationOutcome"])
    assert header["issue"][0]["severity"] == "warning"

    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": _change(read(wf, "Task/t2"), status="failed"),
                "request": {"method": "PUT", "url": "Task/t2"},
            }
        ],
    }
    answer = wf.post("/", json=bundle, headers=partner("alpha")).json()
    assert answer["entry"][0]["response"]["outcome"]["issue"][0]["expression"] == [
        "Task.statusReason"
    ]


def test_a_reason_given_means_no_warning(wf) -> None:
    task = referral(wf, owner="alpha", status="requested")
    response = wf.put(
        "/Task/t1",
        json=_change(task, status="rejected", statusReason={"text": "no capacity"}),
        headers=partner("alpha"),
    )
    assert response.status_code == 200
    assert "X-FHIR-OperationOutcome" not in response.headers


# -- claiming an unassigned Task ------------------------------------------------------------------


def _claim(client, org: str, task: dict, version: str | None = "1", method: str = "put"):  # type: ignore[no-untyped-def,type-arg]
    headers = partner(org)
    if version is not None:
        headers["If-Match"] = f'W/"{version}"'
    body = _change(task, status="accepted", owner={"reference": f"Organization/{org}"})
    return client.put("/Task/t1", json=body, headers=headers)


def test_the_first_claimant_wins_and_the_slower_gets_412(wf) -> None:
    task = referral(wf, owner=None)
    assert _claim(wf, "alpha", task).status_code == 200
    slower = _claim(wf, "beta", task)
    assert slower.status_code == 412
    stored = read(wf, "Task/t1")
    assert (stored["owner"]["reference"], stored["status"]) == ("Organization/alpha", "accepted")


def test_a_claim_must_be_conditional_set_owner_and_accepted_together_and_come_from_an_eligible_partner(
    wf,
) -> None:
    task = referral(wf, owner=None)
    assert _claim(wf, "alpha", task, version=None).status_code == 428
    owner_only = _change(task, owner={"reference": "Organization/alpha"})
    assert (
        wf.put(
            "/Task/t1", json=owner_only, headers={**partner("alpha"), "If-Match": 'W/"1"'}
        ).status_code
        == 403
    )
    put(wf, {"resourceType": "Organization", "id": "bakery", "name": "Bakery"})
    assert _claim(wf, "bakery", task).status_code == 403
    assert read(wf, "Task/t1").get("owner") is None
    patch = [
        {"op": "add", "path": "/owner", "value": {"reference": "Organization/gamma"}},
        {"op": "replace", "path": "/status", "value": "accepted"},
    ]
    response = wf.patch(
        "/Task/t1",
        json=patch,
        headers={
            **partner("gamma"),
            "If-Match": 'W/"1"',
            "Content-Type": "application/json-patch+json",
        },
    )
    assert (
        response.status_code == 200
        and response.json()["owner"]["reference"] == "Organization/gamma"
    )


@pytest.fixture
def wf_server(app, serve_app):  # type: ignore[no-untyped-def]
    install_test_callers(app)
    return serve_app(app)


def test_two_partners_claiming_at_once_one_wins_one_gets_412(wf_server) -> None:
    with httpx.Client(base_url=wf_server) as client:
        directory(client, PARTNERS)
        for round_ in range(5):
            task = referral(client, owner=None, task="t1", sr="sr1") if round_ == 0 else None
            if task is None:  # a fresh unassigned Task each round
                current = read(client, "Task/t1")
                task = {k: v for k, v in current.items() if k != "meta"}
                client.delete("/Task/t1", headers=FHIR)
                task = put(
                    client,
                    {**{k: v for k, v in task.items() if k != "owner"}, "status": "requested"},
                )
            version = read(client, "Task/t1")["meta"]["versionId"]
            barrier = threading.Barrier(2)
            codes: dict[str, int] = {}

            def claim(org: str, task=task, version=version, barrier=barrier, codes=codes) -> None:  # type: ignore[no-untyped-def]
                with httpx.Client(base_url=wf_server) as own:
                    barrier.wait()
                    codes[org] = _claim(own, org, task, version=version).status_code

            threads = [threading.Thread(target=claim, args=(org,)) for org in ("alpha", "beta")]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(codes.values()) == [200, 412], codes
            winner = next(org for org, code in codes.items() if code == 200)
            assert read(client, "Task/t1")["owner"]["reference"] == f"Organization/{winner}"
