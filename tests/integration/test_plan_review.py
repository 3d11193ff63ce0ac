"""Plan review in the web pages: a draft plan made by a discharge is changed (partner, activities,
due date) and approved or declined through the same workflow, rights and audit as the API; and
caseloads (case managers as Practitioners on the plan's CareTeam, reassignment, overview)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from worklist_helpers import SPANISH, Desk, desk_for, plan_version, speak_spanish, visible_text

from fhir_gateway.context import SYSTEM
from fhir_gateway.errors import GatewayError
from fhir_gateway.security import TokenCaller, search_audit_events
from fhir_gateway.services import resources
from fhir_gateway.web._caseload import NUCC, practitioner_ref

SAFETY = "Safety and crisis plan review"
PEER = "Peer support group"
THERAPY = "Psychotherapy intake within 14 days"
HOUSING = "Housing support"


@pytest.fixture
def desk(database, database_url) -> Iterator[Desk]:  # type: ignore[no-untyped-def]
    with desk_for(database, database_url, audit_enabled=True) as desk:
        yield desk


def _task_of(page: str, service: str) -> tuple[str, str]:
    """(task id, version) of the service's partner form on the plan page."""
    found = re.search(
        rf'action="/web/referrals/([^/"]+)/partner">\s*<input[^>]*>\s*<input type="hidden" name="version" value="(\d+)">'
        rf"(?:(?!</form>).)*?<legend>Partner for {re.escape(service)}</legend>",
        page,
        flags=re.S,
    )
    assert found, f"no partner form for {service}"
    return found.group(1), found.group(2)


def _request_of(page: str, service: str) -> str:
    found = re.search(
        rf'action="/web/plans/[^/"]+/activities/([^/"]+)/drop"[^>]*>(?:(?!</form>).)*?Drop {re.escape(service)}</button>',
        page,
        flags=re.S,
    )
    assert found, f"no drop form for {service}"
    return found.group(1)


def test_a_case_manager_changes_a_partner_drops_and_adds_activities_moves_a_due_date_and_approves(
    desk: Desk,
):
    plan = desk.discharge(discharged="20991110140000")  # deadlines ahead: nothing is late
    desk.sign_in("carla")
    board = desk.client.get("/web/worklist").text
    assert f'href="/web/plans/{plan["id"]}"' in board and "Plan to approve" in board
    url = f"/web/plans/{plan['id']}"
    page = desk.client.get(url).text
    assert "Waiting for approval" in page
    text = visible_text(page)
    assert "Sangamon County Crisis Response" in text  # the second eligible partner, and why
    assert (
        "Eligible: offers this service; covers the patient's area (Springfield, IL 62701)" in text
    )
    assert "Lincoln Therapy Associates Not eligible: offers this service;" in text and (
        "is not accepting new clients" in text
    )

    safety_task, version = _task_of(page, SAFETY)
    answer = desk.post(
        f"/web/referrals/{safety_task}/partner",
        page,
        version=version,
        organization="Organization/sangamon-crisis",
        back=url,
    )
    assert answer.status_code == 303 and answer.headers["location"] == f"{url}?done=partner"
    page = desk.client.get(answer.headers["location"]).text
    assert "Partner changed." in page
    not_eligible = desk.post(
        f"/web/referrals/{safety_task}/partner",
        page,
        version=_task_of(page, SAFETY)[1],
        organization="Organization/lincoln-therapy",
        back=url,
    )
    assert not_eligible.status_code == 422 and "eligible partners" in not_eligible.text

    peer_request = _request_of(page, PEER)
    assert desk.post(f"{url}/activities/{peer_request}/drop", page, reason="").status_code == 400
    answer = desk.post(
        f"{url}/activities/{peer_request}/drop", page, reason="Already attends a group weekly"
    )
    assert answer.status_code == 303
    page = desk.client.get(url).text
    answer = desk.post(f"{url}/activities", page, definition="housing-support")
    assert answer.status_code == 303
    page = desk.client.get(answer.headers["location"]).text
    assert "Activity added to the plan." in page and f"Drop {HOUSING}" in page
    twice = desk.post(f"{url}/activities", page, definition="housing-support")
    assert twice.status_code == 422  # the plan has it already
    missing = desk.post(f"{url}/activities", page, definition="no-such-template")
    assert missing.status_code == 404

    therapy_task, version = _task_of(page, THERAPY)
    past = desk.post(
        f"/web/referrals/{therapy_task}/due",
        page,
        version=version,
        date="2000-01-01",
        reason="x",
        back=url,
    )
    assert past.status_code == 422 and "in the past" in past.text
    answer = desk.post(
        f"/web/referrals/{therapy_task}/due",
        page,
        version=version,
        date="2099-12-01",
        reason="Patient travels until December",
        back=url,
    )
    assert answer.status_code == 303
    page = desk.client.get(url).text
    assert "Due date moved from 2099-11-24 to 2099-12-01 by Carla Mendes" in page

    approved = desk.post(f"{url}/approve", page, version=plan_version(page))
    assert approved.status_code == 303 and approved.headers["location"].startswith(
        "/web/worklist?done=approved"
    )
    assert "Plan approved." in desk.client.get(approved.headers["location"]).text

    stored = desk.read(f"CarePlan/{plan['id']}")
    assert stored["status"] == "active"
    tasks = desk.tasks_of(plan)
    assert tasks[SAFETY]["status"] == "requested"
    assert tasks[SAFETY]["owner"]["reference"] == "Organization/sangamon-crisis"
    assert tasks[PEER]["status"] == "cancelled"
    assert "Already attends a group weekly" in tasks[PEER]["statusReason"]["text"]
    peer = next(a for a in stored["activity"] if a["reference"]["reference"].endswith(peer_request))
    assert peer["progress"][-1]["text"] == (
        "Dropped at review by Carla Mendes: Already attends a group weekly"
    )
    assert peer["progress"][-1]["authorReference"]["reference"] == practitioner_ref("carla")
    assert desk.read(f"ServiceRequest/{peer_request}")["status"] == "revoked"
    assert tasks[HOUSING]["status"] == "requested" and tasks[HOUSING]["owner"]["reference"] == (
        "Organization/hope-housing"
    )
    assert tasks[THERAPY]["restriction"]["period"]["end"].startswith("2099-12-01T23:59:59")
    assert "Patient travels until December" in tasks[THERAPY]["note"][-1]["text"]
    # the audit trail names the user for each change, as it names an API client
    trail = [str(e) for e in _trail(desk) if "user:carla" in str(e.get("agent"))]
    assert any(f"/web/plans/{plan['id']}/approve" in e for e in trail), trail[-3:]
    assert any(f"/web/referrals/{safety_task}/partner" in e for e in trail)
    after = desk.client.get("/web/worklist").text
    assert f'href="/web/plans/{plan["id"]}"' not in after  # nothing to approve any more
    edit_late = desk.post(f"{url}/activities", page, definition="vocational-training")
    assert edit_late.status_code == 422 and "no longer in review" in edit_late.text


def test_declining_a_plan_withdraws_its_referrals_with_the_reason(desk: Desk):
    plan = desk.discharge(discharged="20991110140000")
    desk.sign_in("carla")
    url = f"/web/plans/{plan['id']}"
    page = desk.client.get(url).text
    assert (
        desk.post(f"{url}/decline", page, version=plan_version(page), reason=" ").status_code == 400
    )
    dropped = desk.post(f"{url}/activities/{_request_of(page, PEER)}/drop", page, reason="No")
    assert dropped.status_code == 303  # meanwhile, in another tab: the plan changed
    stale = desk.post(f"{url}/decline", page, version=plan_version(page), reason="Wrong patient")
    assert stale.status_code == 412 and "Changed meanwhile" in stale.text
    page = desk.client.get(url).text
    answer = desk.post(
        f"{url}/decline", page, version=plan_version(page), reason="Transferred to another state"
    )
    assert answer.status_code == 303
    stored = desk.read(f"CarePlan/{plan['id']}")
    assert stored["status"] == "revoked"
    assert (
        stored["note"][-1]["text"]
        == "Declined at review by Carla Mendes: Transferred to another state"
    )
    assert {t["status"] for t in desk.tasks_of(plan).values()} == {"cancelled"}
    assert {desk.read(g["reference"])["lifecycleStatus"] for g in stored["goal"]} == {"cancelled"}
    assert "Declined or stopped" in desk.client.get(url).text


def test_only_the_case_team_reviews_plans_and_what_it_may_not_see_answers_as_missing(desk: Desk):
    plan = desk.discharge(discharged="20991110140000")
    url = f"/web/plans/{plan['id']}"
    desk.sign_in("carla")
    page = desk.client.get(url).text
    version = plan_version(page)
    for username in ("cmhc", "eve"):  # a partner; a clinician of another organisation (read-only)
        desk.sign_in(username)
        real = desk.client.get(url)
        made_up = desk.client.get("/web/plans/no-such-plan")
        assert real.status_code == made_up.status_code == 403
        assert real.text.replace(plan["id"], "X") == made_up.text.replace("no-such-plan", "X")
        assert "Jane" not in real.text
        refused = desk.post(f"{url}/approve", desk.client.get("/web/login").text, version=version)
        assert refused.status_code == 403 and "may not use the case-manager pages" in refused.text
        assert desk.read(f"CarePlan/{plan['id']}")["status"] == "draft"
    desk.sign_in("carla")
    missing = desk.client.get("/web/plans/no-such-plan")
    assert missing.status_code == 404 and "There is no care plan no-such-plan." in missing.text
    bogus = desk.post("/web/plans/no-such-plan/approve", missing.text, version="1")
    assert bogus.status_code == 404
    partner = TokenCaller(
        client_id="cmhc-client",
        role="partner",
        organization="Organization/springfield-cmhc",
        scopes=frozenset({"system/*.cruds"}),
    )
    with pytest.raises(GatewayError) as refused_api, desk.database.session() as session:
        current = resources.read(session, "CarePlan", plan["id"], partner)  # the API's path
        resources.update(
            session, "CarePlan", plan["id"], {**current.content, "status": "active"}, partner
        )
    assert refused_api.value.status in (403, 404)
    assert desk.read(f"CarePlan/{plan['id']}")["status"] == "draft"


def _team(desk: Desk, plan: dict[str, Any]) -> dict[str, Any]:
    return desk.read(desk.read(f"CarePlan/{plan['id']}")["careTeam"][0]["reference"])


def test_caseloads_assign_reassign_move_and_count(desk: Desk):
    first = desk.discharge(discharged="20991110140000")
    second = desk.discharge(
        discharged="20991111140000", mrn="MRN200", visit="V200", control="M2", family="Roe"
    )
    desk.sign_in("carla")
    for plan in (first, second):
        url = f"/web/plans/{plan['id']}"
        answer = desk.post(f"{url}/case-manager", desk.client.get(url).text, username="carla")
        assert answer.status_code == 303
    team = _team(desk, first)
    keeper = [p for p in team["participant"] if p["role"][0]["coding"][0]["system"] == NUCC]
    assert [p["member"]["reference"] for p in keeper] == [practitioner_ref("carla")]
    assert keeper[0]["role"][0]["coding"][0]["code"] == "171M00000X"
    assert any(  # the engine's own members stay
        p["member"]["reference"].startswith("Patient/") for p in team["participant"]
    )
    practitioner = desk.read(practitioner_ref("carla"))
    assert practitioner["name"][0]["text"] == "Carla Mendes"

    overview = visible_text(desk.client.get("/web/caseloads").text)
    assert "Carla Mendes 2 0" in overview and "Dev Patel 0 0" in overview
    mine = desk.client.get("/web/worklist", params={"mine": "1"}).text
    assert len(re.findall(r'<tr class="kind-plan">', mine)) == 2

    url = f"/web/plans/{second['id']}"
    desk.post(f"{url}/case-manager", desk.client.get(url).text, username="dev")
    overview = visible_text(desk.client.get("/web/caseloads").text)
    assert "Carla Mendes 1 0" in overview and "Dev Patel 1 0" in overview
    assert "case manager: Dev Patel" in visible_text(desk.client.get(url).text)
    mine = desk.client.get("/web/worklist", params={"mine": "1"}).text
    assert len(re.findall(r'<tr class="kind-plan">', mine)) == 1

    page = desk.client.get("/web/caseloads").text
    answer = desk.post("/web/caseloads/move", page, **{"from": "carla", "to": "dev"})
    assert answer.status_code == 303
    overview = visible_text(desk.client.get("/web/caseloads").text)
    assert "Carla Mendes 0 0" in overview and "Dev Patel 2 0" in overview
    same = desk.post("/web/caseloads/move", page, **{"from": "dev", "to": "dev"})
    assert same.status_code == 422
    unknown = desk.post(
        f"{url}/case-manager", page, username="cmhc"
    )  # a partner is no case manager
    assert unknown.status_code == 400


def test_the_overview_counts_overdue_referrals_per_case_manager(desk: Desk):
    plan = desk.discharge(discharged="20991110140000")
    desk.sign_in("carla")
    url = f"/web/plans/{plan['id']}"
    desk.post(f"{url}/case-manager", desk.client.get(url).text, username="dev")
    from worklist_helpers import monitor_flag

    with desk.database.session() as session:
        patient = plan["subject"]["reference"].split("/", 1)[1]
        for n in range(3):
            doc = monitor_flag(
                f"od{n}",
                ["overdue", "past-deadline"],
                patient,
                f"Task/x{n}",
                "past",
                "2099-11-20T00:00:00Z",
            )
            if n == 2:
                doc["status"] = "inactive"  # ended: no longer counted
            resources.update(
                session,
                "Flag",
                doc["id"],
                doc,
                TokenCaller(client_id="s", role="admin", scopes=frozenset({"system/*.cruds"})),
            )
    overview = visible_text(desk.client.get("/web/caseloads").text)
    assert "Dev Patel 1 2" in overview and "Carla Mendes 0 0" in overview


def test_an_unassigned_referral_gets_a_partner_from_the_worklist(desk: Desk):
    plan = desk.discharge(
        discharged="20991110140000", diagnoses=SPANISH, language="spa^Spanish^ISO6392"
    )
    desk.sign_in("carla")
    url = f"/web/plans/{plan['id']}"
    page = desk.client.get(url).text
    desk.post(f"{url}/approve", page, version=plan_version(page))
    board = desk.client.get("/web/worklist").text
    task = desk.tasks_of(plan)["Vocational training"]
    assert task["status"] == "requested" and "owner" not in task
    link = f"/web/referrals/{task['id']}/partner"
    assert link in board and "speaks the patient's language (es)" in visible_text(board)
    before = visible_text(desk.client.get(link).text)
    assert (
        "Why it has none: no partner offering this service in the patient's area speaks" in before
    )
    assert "No partner offering this service is eligible today" in before

    speak_spanish(desk.database)  # the directory changes; the recorded reason stays as it was
    page = desk.client.get(link).text
    assert (
        "Capital Area IPS Employment" in page
        and "Eligible: offers this service" in visible_text(page)
    )
    version = re.search(r'name="version" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    answer = desk.post(
        link, page, version=version, organization="Organization/capital-ips", back="/web/worklist"
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/web/worklist?done=assigned"
    after = desk.client.get(answer.headers["location"]).text
    assert "The referral has a partner now." in after and link not in after
    task = desk.read(f"Task/{task['id']}")
    assert (
        task["status"] == "requested" and task["owner"]["reference"] == "Organization/capital-ips"
    )
    again = desk.post(
        link, after, version=task["meta"]["versionId"], organization="Organization/capital-ips"
    )
    assert again.status_code == 422  # with that partner already


def _trail(desk: Desk) -> list[dict[str, Any]]:
    """The audit trail, as an administrator searches it."""
    found = desk.database.read(
        search_audit_events,
        [("_count", "1000")],
        caller=SYSTEM,
        base_url="",
        settings=desk.app.state.settings,
    )
    return [e["resource"] for e in json.loads(found).get("entry", [])]
