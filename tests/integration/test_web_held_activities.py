"""In review mode a screening's additions to an active plan wait for the case manager, who
approves or declines each on the patient page: approved, its Task goes to the partner with its
deadline still counted from the screening; declined, the Task is cancelled; once nothing waits,
the screening's work item ends. Only the case team decides, and only this patient's additions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from careplan_helpers import ZONE
from held_helpers import CALL, SAFETY, search, world
from web_helpers import csrf, sign_in, web_client
from workflow_helpers import ManualClock

from fhir_gateway import assessments
from fhir_gateway.monitors import MONITOR_FLAGS


def _decide(client: Any, page: str, patient_id: str, request: dict[str, Any], verb: str) -> Any:
    return client.post(
        f"/web/patients/{patient_id}/held/{request['id']}/{verb}",
        data={"csrf_token": csrf(page), "version": request["meta"]["versionId"]},
    )


def _task_of(database: Any, request: dict[str, Any]) -> dict[str, Any]:
    [task] = search(database, "Task", ("focus", f"ServiceRequest/{request['id']}"))
    return task


def test_the_case_manager_approves_one_addition_and_declines_the_other(database, database_url):
    ManualClock(datetime(2025, 3, 12, 15, 0, tzinfo=UTC))  # half an hour after the screening
    with web_client(
        database, database_url, careplan_mode="review", sender_zones={"STMARYS": ZONE}
    ) as client:
        patient_id, held = world(database, client.app)
        assert set(held) == {SAFETY, CALL}
        assert sign_in(client, "cm").status_code == 303
        page = client.get(f"/web/patients/{patient_id}").text
        assert "waiting for your approval" in page and SAFETY in page and CALL in page

        approved = _decide(client, page, patient_id, held[SAFETY], "approve")
        assert approved.status_code == 303
        assert approved.headers["location"].endswith("done=held-active")
        task = _task_of(database, held[SAFETY])
        assert task["status"] == "requested" and task["owner"]["reference"]
        assert task["restriction"]["period"]["end"] == "2025-03-13T09:30:00-05:00"
        [work] = search(database, "Flag", ("_tag", f"{MONITOR_FLAGS}|plan-revision"))
        assert work["status"] == "active"  # the call still waits

        page = client.get(f"/web/patients/{patient_id}").text
        assert (
            "Approved: the activity went to its partner"
            in client.get(approved.headers["location"]).text
        )
        declined = _decide(client, page, patient_id, held[CALL], "decline")
        assert declined.headers["location"].endswith("done=held-revoked")
        assert _task_of(database, held[CALL])["status"] == "cancelled"
        [work] = search(database, "Flag", ("_tag", f"{MONITOR_FLAGS}|plan-revision"))
        assert work["status"] == "inactive"  # nothing waits now
        assert "waiting for your approval" not in client.get(f"/web/patients/{patient_id}").text


def test_only_the_case_team_decides_and_only_on_this_patients_additions(database, database_url):
    ManualClock(datetime(2025, 3, 12, 15, 0, tzinfo=UTC))
    with web_client(
        database, database_url, careplan_mode="review", sender_zones={"STMARYS": ZONE}
    ) as client:
        patient_id, held = world(database, client.app)
        assert sign_in(client, "cm").status_code == 303
        page = client.get(f"/web/patients/{patient_id}").text
        assert _decide(client, page, "someone-else", held[SAFETY], "approve").status_code == 404
        assert _decide(client, page, patient_id, held[SAFETY], "postpone").status_code == 404
        referral = next(
            r
            for r in search(database, "ServiceRequest", ("status", "active"))
            if not any(i["system"] == assessments.REVISION_SYSTEM for i in r.get("identifier", []))
        )
        assert _decide(client, page, patient_id, referral, "decline").status_code == 404
        assert all(r["status"] == "draft" for r in held.values())
        client.cookies.clear()
        assert sign_in(client, "ann").status_code == 303  # a partner
        page = client.get("/web/", follow_redirects=True).text  # the partner's inbox
        refused = client.post(
            f"/web/patients/{patient_id}/held/{held[SAFETY]['id']}/approve",
            data={"csrf_token": csrf(page), "version": held[SAFETY]["meta"]["versionId"]},
        )
        assert refused.status_code in (403, 404)
        assert _task_of(database, held[SAFETY])["status"] == "draft"
