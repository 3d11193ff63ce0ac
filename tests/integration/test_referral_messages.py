"""Messages on a referral over the FHIR REST API: a partner writes to the case manager as a
Communication on its referral Task, the case manager answers, and each finds the thread with
``Communication?based-on=Task/…``. Another partner can neither read nor write on a referral that
is not its own (it answers as for one that does not exist), and a message carries its referral's
42 CFR Part 2 labels, so it reaches the partner only under the patient's consent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from inbox_helpers import api_headers, message, read, seed_part2_referral, seed_referral_context
from security_data import consent
from security_helpers import secure_client
from web_helpers import seed_caseload

from fhir_gateway.privacy import label_codes, labels_of


@pytest.fixture
def api(database, database_url) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:  # type: ignore[no-untyped-def]
    with secure_client(database, database_url) as client:
        seed_caseload(database)  # after the app exists: its write hooks label what is stored
        seed_referral_context(database)
        yield client, api_headers(client, database)


def _ids(bundle: dict[str, Any], res_type: str = "Communication") -> list[str]:
    return [
        e["resource"]["id"]
        for e in bundle.get("entry", [])
        if e["resource"]["resourceType"] == res_type
    ]


def _problem(response: Any) -> str:
    return " ".join(i.get("diagnostics", "") for i in response.json().get("issue", []))


def test_a_partner_and_the_case_manager_write_on_the_referral_and_both_read_the_thread(api):
    client, headers = api
    sent = client.post(
        "/Communication",
        json=message("Task/t1", "Jane's phone is switched off; is there another number?"),
        headers=headers["harbor"],
    )
    assert sent.status_code == 201, sent.text
    question = sent.json()
    # the workflow fills in what a partner's message is: about the referral's patient, from the
    # partner's organisation, to the referral's coordinator
    assert question["subject"] == {"reference": "Patient/p1"}
    assert question["sender"] == {"reference": "Organization/harbor"}
    assert question["recipient"] == [{"reference": "Practitioner/dana"}]
    reply = client.post(
        "/Communication",
        json=message(
            "Task/t1",
            "Try her sister, 555-0199.",
            inResponseTo=[{"reference": f"Communication/{question['id']}"}],
            sender={"reference": "Practitioner/dana"},
            recipient=[{"reference": "Organization/harbor"}],
        ),
        headers=headers["cm"],
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["subject"] == {"reference": "Patient/p1"}
    for side in ("harbor", "cm"):
        thread = client.get(
            "/Communication?based-on=Task/t1&_sort=sent", headers=headers[side]
        ).json()
        assert _ids(thread) == [question["id"], reply.json()["id"]], side
    included = client.get(
        "/Task?_id=t1&_revinclude=Communication:based-on", headers=headers["harbor"]
    ).json()
    assert set(_ids(included)) == {question["id"], reply.json()["id"]}


def test_another_partner_cannot_read_or_write_on_a_referral_that_is_not_its_own(api):
    client, headers = api
    posted = client.post(
        "/Communication", json=message("Task/t1", "Progress so far"), headers=headers["harbor"]
    ).json()
    other = headers["elsewhere"]
    assert client.get(f"/Communication/{posted['id']}", headers=other).status_code == 404
    assert _ids(client.get("/Communication?based-on=Task/t1", headers=other).json()) == []
    assert _ids(client.get("/Communication", headers=other).json()) == []
    leaked = client.get("/Task?_revinclude=Communication:based-on", headers=other).json()
    assert _ids(leaked) == []
    # writing on harbor's referral answers exactly as writing on one that does not exist
    theirs = client.post("/Communication", json=message("Task/t1", "Hello"), headers=other)
    missing = client.post("/Communication", json=message("Task/nope", "Hello"), headers=other)
    assert theirs.status_code == missing.status_code == 404
    assert _problem(theirs) == _problem(missing).replace("Task/nope", "Task/t1")
    # an open referral it could claim is not its own either, until it accepts it
    claimable = client.post("/Communication", json=message("Task/t2", "Hello"), headers=other)
    assert claimable.status_code == 404
    assert "Task/t2 is not known" in _problem(claimable)
    # nor may it answer a message it cannot see, on a referral of its own
    client.put(
        "/Task/t2",
        json={
            **read_task(client, headers["elsewhere"], "t2"),
            "status": "accepted",
            "owner": {"reference": "Organization/elsewhere"},
        },
        headers={**other, "If-Match": 'W/"1"'},
    )
    answer = client.post(
        "/Communication",
        json=message(
            "Task/t2", "Re", inResponseTo=[{"reference": f"Communication/{posted['id']}"}]
        ),
        headers=other,
    )
    assert answer.status_code == 404 and f"Communication/{posted['id']} is not known" in _problem(
        answer
    )


def read_task(client: TestClient, headers: dict[str, str], task_id: str) -> dict[str, Any]:
    return dict(client.get(f"/Task/{task_id}", headers=headers).json())


def test_a_partner_writes_as_itself_about_the_referral_only(api):
    client, headers = api
    harbor = headers["harbor"]
    as_other = client.post(
        "/Communication",
        json=message("Task/t1", "Hi", sender={"reference": "Organization/elsewhere"}),
        headers=harbor,
    )
    assert as_other.status_code == 403 and "as its own organisation" in _problem(as_other)
    beyond = client.post(
        "/Communication",
        json={
            **message("Task/t1", "Hi"),
            "basedOn": [{"reference": "Task/t1"}, {"reference": "ServiceRequest/sr2"}],
        },
        headers=harbor,
    )
    assert (
        beyond.status_code == 400
        and "only the referral Task and its ServiceRequest" in _problem(beyond)
    )
    other_patient = client.post(
        "/Communication",
        json=message("Task/t1", "Hi", subject={"reference": "Patient/someone-else"}),
        headers=harbor,
    )
    assert other_patient.status_code == 400
    unattached = client.post(
        "/Communication",
        json={
            "resourceType": "Communication",
            "status": "completed",
            "payload": [{"contentString": "Hi"}],
        },
        headers=harbor,
    )
    assert unattached.status_code == 400 and "basedOn the referral Task" in _problem(unattached)
    posted = client.post("/Communication", json=message("Task/t1", "Hi"), headers=harbor).json()
    changed = client.put(
        f"/Communication/{posted['id']}",
        json={**posted, "status": "entered-in-error"},
        headers=harbor,
    )
    assert (
        changed.status_code == 403
    )  # a message, once sent, is the record: partners do not edit it


def test_a_message_sent_with_part_of_is_on_the_referral_too(api):
    client, headers = api
    posted = client.post(
        "/Communication",
        json={
            "resourceType": "Communication",
            "status": "completed",
            "partOf": [{"reference": "Task/t1"}],
            "payload": [{"contentString": "First visit booked for Monday"}],
        },
        headers=headers["harbor"],
    )
    assert posted.status_code == 201, posted.text
    found = client.get("/Communication?part-of=Task/t1", headers=headers["cm"]).json()
    assert _ids(found) == [posted.json()["id"]]
    assert _ids(client.get("/Communication?part-of=Task/t1", headers=headers["harbor"]).json()) == [
        posted.json()["id"]
    ]
    assert (
        _ids(client.get("/Communication?part-of=Task/t1", headers=headers["elsewhere"]).json())
        == []
    )


def test_a_message_carries_its_referrals_part2_labels_and_needs_the_patients_consent(api, database):
    client, headers = api
    seed_part2_referral(database)
    harbor = headers["harbor"]
    before = client.post("/Communication", json=message("Task/t-sud", "Hi"), headers=harbor)
    assert before.status_code == 404  # without Jane's consent harbor does not see the referral
    granted = client.post(
        "/Consent", json=consent("p1", "Organization/harbor"), headers=headers["cm"]
    )
    assert granted.status_code == 201, granted.text
    # the writer's own labels cannot lower the referral's
    sent = client.post(
        "/Communication",
        json=message(
            "Task/t-sud",
            "Intake on Tuesday",
            meta={
                "security": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}
                ]
            },
        ),
        headers=harbor,
    )
    assert sent.status_code == 201, sent.text
    stored = read(database, f"Communication/{sent.json()['id']}")
    assert {"R", "ETH", "42CFRPart2"} <= label_codes(labels_of(stored))
    copy = client.get(f"/Communication/{stored['id']}", headers=harbor).json()
    assert "NORDSCLCD" in label_codes(labels_of(copy))  # no redisclosure without consent
    revoked = client.put(
        f"/Consent/{granted.json()['id']}",
        json={**granted.json(), "status": "inactive"},
        headers=headers["cm"],
    )
    assert revoked.status_code == 200, revoked.text
    assert client.get(f"/Communication/{stored['id']}", headers=harbor).status_code == 404
    assert _ids(client.get("/Communication?based-on=Task/t-sud", headers=harbor).json()) == []
    assert _ids(client.get("/Communication?based-on=Task/t-sud", headers=headers["cm"]).json()) == [
        stored["id"]
    ]
