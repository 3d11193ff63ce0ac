"""The case manager's worklist: what needs a person comes first, filters, names and local times
instead of references, paging, a bounded number of queries with 2,000 active referrals, and `/`
sending a browser to the web pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from worklist_helpers import (
    NOW,
    Desk,
    bulk_load,
    care_team,
    desk_for,
    discharge,
    draft_plan,
    monitor_flag,
    organization,
    patient,
    referral,
    row_kinds,
    row_patients,
    visible_text,
)

from fhir_gateway import clock
from fhir_gateway.web._caseload import practitioner_ref
from fhir_gateway.web._worklist import PAGE_SIZE

AT = datetime.fromisoformat(NOW)


def ago(**delta: float) -> str:
    return (AT - timedelta(**delta)).isoformat()


def ahead(**delta: float) -> str:
    return (AT + timedelta(**delta)).isoformat()


@pytest.fixture
def desk(database, database_url) -> Iterator[Desk]:  # type: ignore[no-untyped-def]
    clock.set_clock(lambda: AT)
    with desk_for(database, database_url) as desk:
        yield desk


def _scenario() -> list[dict[str, Any]]:
    """One patient per kind of work, and two referrals that need nothing now."""
    names = {
        "p1": "Crisis",
        "p2": "Readmitted",
        "p3": "Planned",
        "p4": "Unassigned",
        "p5": "Silent",
        "p6": "Late",
        "p7": "Ancient",
        "p8": "Soon",
        "p9": "Calm",
        "p10": "Done",
    }
    docs: list[dict[str, Any]] = [
        organization("harbor", "Harbor Housing", "+1 217 555 0101"),
        organization("elsewhere", "Elsewhere Services"),
        *(patient(pid, "Pat", family) for pid, family in names.items()),
        monitor_flag(
            "f1",
            ["crisis"],
            "p1",
            "Encounter/e1",
            "CRISIS: emergency visit (Encounter/e1).",
            ago(days=1),
        ),
        monitor_flag(
            "f2", ["readmission"], "p2", "Encounter/e2", "Readmitted (Encounter/e2).", ago(days=2)
        ),
        draft_plan("cp3", "p3", ago(days=3), "Aftercare plan for Planned"),
        *referral("t4", "p4", status="requested"),
        monitor_flag(
            "f4",
            ["unassigned"],
            "p4",
            "Task/t4",
            "Referral 'Housing support' (Task/t4) has no partner: no partner in the directory offers "
            "this service (code housing-support). Assign it to a partner or arrange the service with "
            "the patient.",
            ago(hours=5),
        ),
        *referral(
            "t5", "p5", status="requested", owner="Organization/harbor", deadline=ago(days=1)
        ),
        monitor_flag(
            "f5", ["overdue", "unacknowledged"], "p5", "Task/t5", "not accepted", ago(days=1)
        ),
        monitor_flag("f5b", ["overdue", "past-deadline"], "p5", "Task/t5", "past", ago(hours=2)),
        *referral(
            "t6", "p6", status="accepted", owner="Organization/harbor", deadline=ago(days=10)
        ),
        monitor_flag("f6", ["overdue", "past-deadline"], "p6", "Task/t6", "past", ago(days=9)),
        *referral(
            "t7", "p7", status="accepted", owner="Organization/harbor", deadline=ago(days=400)
        ),
        monitor_flag("f7", ["overdue", "past-deadline"], "p7", "Task/t7", "past", ago(days=399)),
        *referral(
            "t8", "p8", status="accepted", owner="Organization/elsewhere", deadline=ahead(hours=20)
        ),
        *referral(
            "t9", "p9", status="accepted", owner="Organization/harbor", deadline=ahead(days=10)
        ),
        *referral(
            "t10", "p10", status="completed", owner="Organization/harbor", deadline=ago(days=3)
        ),
    ]
    ended = monitor_flag(
        "f10", ["overdue", "past-deadline"], "p10", "Task/t10", "past", ago(days=2)
    )
    docs.append({**ended, "status": "inactive"})
    docs += [patient("p11", "Pat", "Unreached")]
    docs += referral("t11", "p11", status="rejected", owner="Organization/harbor")
    docs.append(_unreached("f11", "p11", "Task/t11", ago(hours=1)))
    docs += [patient("p12", "Pat", "Missed"), *discharge("p12", ago(days=12))]
    docs += [patient("p13", "Pat", "Pending"), *discharge("p13", ago(days=3))]
    docs += [patient("p14", "Pat", "Seen"), *discharge("p14", ago(days=5), seen=ago(days=3))]
    docs += [patient("p15", "Pat", "Hospice"), *discharge("p15", ago(days=10), disposition="50")]
    docs += [patient("p16", "Pat", "Long"), *discharge("p16", ago(days=90))]  # before the look-back
    return docs


def _unreached(flag_id: str, pid: str, about: str, start: str) -> dict[str, Any]:
    """The work item a partner's "unable to contact the patient" raises (a code of the inbox's)."""
    doc = monitor_flag(flag_id, ["unassigned"], pid, about, "", start)
    coding = {"system": doc["meta"]["tag"][0]["system"], "code": "unable-to-contact"}
    text = f"Referral 'Housing support' ({about}) was declined: the partner could not contact the patient."
    return {**doc, "meta": {"tag": [coding]}, "code": {"coding": [coding], "text": text}}


def test_the_worklist_puts_what_needs_a_person_first_and_each_row_says_what_to_do(desk: Desk):
    bulk_load(desk.database, _scenario())
    desk.sign_in("carla")
    page = desk.client.get("/web/worklist")
    assert page.status_code == 200
    assert row_kinds(page.text) == [
        "crisis",
        "readmission",
        "follow-up-missed",
        "plan",
        "unassigned",
        "unable-to-contact",
        "unacknowledged",
        "past-deadline",
        "past-deadline",
        "due-soon",
        "follow-up-due",
    ]
    assert row_patients(page.text) == [
        "p1",
        "p2",
        "p12",
        "p3",
        "p4",
        "p11",
        "p5",
        "p6",
        "p7",
        "p8",
        "p13",
    ]  # the year-old one sinks; a follow-up made, an exclusion, an old discharge: no row
    text = visible_text(page.text)
    assert "Contact the patient now" in text and "Review the plan" in text
    assert (
        "No partner: no partner in the directory offers this service (code housing-support)."
        in text
    )
    assert 'href="/web/referrals/t4/partner"' in page.text  # the unassigned one: choose a partner
    assert "also Overdue" in text  # one row per referral, naming its other alert
    assert "Call Harbor Housing, or choose another partner" in text and "+1 217 555 0101" in text
    assert "Patient not reached" in text and "Declined by the partner" in text  # an ended referral
    assert "was declined: the partner could not contact the patient." in text
    assert "due today at 11:00 am" not in text and "due tomorrow at 8:00 am (in 20 hours)" in text
    # names, not references; local times in words, not FHIR instants
    for raw in ("Organization/", "Task/", "Patient/", "Encounter/", "+00:00", "T18:00"):
        assert raw not in text, raw
    assert "Calm" not in text and "Done" not in text  # nothing to do for those
    assert "No mental-health follow-up visit within 7 days of the discharge." in text
    assert "discharged Fri 13 Nov" in text and "Arrange a follow-up visit with the patient" in text
    assert 'href="/web/patients/p12"' in page.text  # its next step: the patient page
    assert "No follow-up visit yet: 4 days left in the 7-day window." in text
    for name in ("Seen", "Hospice", "Long"):
        assert name not in text, name


def test_filters_narrow_to_my_caseload_a_partner_or_a_state(desk: Desk):
    docs = _scenario()
    docs.append(care_team("team-p1", "p1", practitioner_ref("carla")))
    docs.append(care_team("team-p6", "p6", practitioner_ref("carla")))
    docs.append(care_team("team-p8", "p8", practitioner_ref("dev")))
    bulk_load(desk.database, docs)
    desk.sign_in("carla")
    mine = desk.client.get("/web/worklist", params={"mine": "1"}).text
    assert row_patients(mine) == ["p1", "p6"]
    harbor = desk.client.get("/web/worklist", params={"partner": "Organization/harbor"}).text
    assert row_patients(harbor) == ["p5", "p6", "p7"]
    accepted = desk.client.get("/web/worklist", params={"state": "accepted"}).text
    assert row_patients(accepted) == ["p6", "p7", "p8"]
    both = desk.client.get("/web/worklist", params={"mine": "1", "state": "accepted"}).text
    assert row_patients(both) == ["p6"]
    devs = desk.client.get("/web/worklist", params={"case_manager": "dev"}).text
    assert row_patients(devs) == ["p8"]
    unknown = desk.client.get("/web/worklist", params={"state": "no-such-state"}).text
    assert len(row_patients(unknown)) == 11  # an unknown state is no filter, not an error


def test_patient_search_by_name_mrn_and_birth_date(desk: Desk):
    bulk_load(
        desk.database,
        [
            patient("a", "Jane", "Doe", "1980-02-03", "MRN-4711"),
            patient("b", "John", "Doe", "1975-06-30", "MRN-0815"),
            patient("c", "Ann", "Smith", "1980-02-03", "MRN-9999"),
        ],
    )
    desk.sign_in("carla")

    def found(q: str) -> str:
        page = desk.client.get("/web/worklist", params={"q": q})
        assert page.status_code == 200
        text = visible_text(page.text)
        return text.split("3 Feb 1980.", 1)[1].split("What needs doing now", 1)[0]  # the results

    assert "2 patients found by name or MRN" in found("doe")
    by_name = found("Jane Doe")
    assert "1 patient found" in by_name and "Jane Doe" in by_name and "John" not in by_name
    by_mrn = found("MRN-0815")
    assert "John Doe" in by_mrn and "Jane" not in by_mrn
    for date in ("1980-02-03", "3 Feb 1980", "February 3, 1980"):
        by_birth = found(date)
        assert "2 patients found by birth date" in by_birth, date
        assert "Jane Doe" in by_birth and "Ann Smith" in by_birth and "John" not in by_birth
    assert "0 patients found" in found("Nobody")
    assert "0 patients found" in found("Doe, | $x")  # search syntax in the box is no error


def test_pages_of_the_worklist_hold_every_row_once(desk: Desk):
    docs: list[dict[str, Any]] = [organization("harbor", "Harbor Housing")]
    for i in range(60):
        docs.append(patient(f"q{i}", "Pat", f"Person{i:02d}"))
        docs += referral(
            f"r{i}",
            f"q{i}",
            status="accepted",
            owner="Organization/harbor",
            deadline=ahead(hours=1 + i / 2),
        )
    bulk_load(desk.database, docs)
    desk.sign_in("carla")
    seen = []
    for number in (1, 2, 3):
        page = desk.client.get("/web/worklist", params={"page": str(number)}).text
        seen += row_patients(page)
        assert f"page {number} of 3" in visible_text(page)
    assert seen == [f"q{i}" for i in range(60)]  # nearest deadline first, none twice, none lost
    assert (
        len(row_patients(desk.client.get("/web/worklist", params={"page": "1"}).text)) == PAGE_SIZE
    )
    last = desk.client.get("/web/worklist", params={"page": "999"}).text  # past the end: the last
    assert row_patients(last) == [f"q{i}" for i in range(50, 60)]
    assert desk.client.get("/web/worklist", params={"page": "x"}).status_code == 200


def _active_referrals(count: int, batch: str = "") -> list[dict[str, Any]]:
    """``count`` open referrals of count/4 patients: some overdue, some without a partner, the rest
    due within hours or days; a draft plan and a crisis every 100 patients."""
    docs: list[dict[str, Any]] = []
    if not batch:
        docs += [organization("harbor", "Harbor Housing"), organization("elsewhere", "Elsewhere")]
    for p in range(count // 4):
        docs.append(patient(f"pt{batch}{p}", "Pat", f"Family{batch}{p:04d}"))
        if p % 100 == 0:
            docs.append(draft_plan(f"plan{batch}{p}", f"pt{batch}{p}", ago(days=1)))
            docs.append(
                monitor_flag(
                    f"crisis{batch}{p}",
                    ["crisis"],
                    f"pt{batch}{p}",
                    "Encounter/x",
                    "CRISIS",
                    ago(hours=p % 7),
                )
            )
    for n in range(count):
        i, pid = n, f"pt{batch}{n // 4}"
        owner = (
            None if i % 50 == 0 else ("Organization/harbor" if i % 2 else "Organization/elsewhere")
        )
        deadline = ago(days=2) if i % 10 == 0 else ahead(hours=1 + i % 96)
        task = f"rt{batch}{i}"
        docs += referral(
            task,
            pid,
            status="requested" if owner is None else "accepted",
            owner=owner,
            deadline=deadline,
        )
        if owner is None:
            docs.append(
                monitor_flag(
                    f"un{batch}{i}",
                    ["unassigned"],
                    pid,
                    f"Task/{task}",
                    "has no partner: x. Assign it",
                    ago(hours=3),
                )
            )
        elif i % 10 == 0:
            docs.append(
                monitor_flag(
                    f"od{batch}{i}",
                    ["overdue", "past-deadline"],
                    pid,
                    f"Task/{task}",
                    "past",
                    ago(days=1),
                )
            )
    return docs


def _statements(desk: Desk, url: str, params: dict[str, str]) -> tuple[int, str]:
    count = {"n": 0}

    def counted(*_: Any) -> None:
        count["n"] += 1

    engine = desk.database.engine
    event.listen(engine, "before_cursor_execute", counted)
    try:
        page = desk.client.get(url, params=params)
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    assert page.status_code == 200
    return count["n"], page.text


@pytest.mark.slow  # scale: hundreds to thousands of rows seeded
def test_two_thousand_active_referrals_page_with_a_bounded_number_of_queries(desk: Desk):
    bulk_load(desk.database, _active_referrals(2000))
    desk.sign_in("carla")
    first_count, first = _statements(desk, "/web/worklist", {})
    text = visible_text(first)
    assert "page 1 of" in text and len(row_patients(first)) == PAGE_SIZE
    assert row_kinds(first)[:5] == ["crisis"] * 5  # the five crises, then the plans
    pages = int(text.split("page 1 of ", 1)[1].split()[0])
    assert pages > 40  # 2000 referrals: more than 1,000 rows need someone
    deep_count, deep = _statements(desk, "/web/worklist", {"page": str(pages - 1)})
    filtered_count, _ = _statements(
        desk, "/web/worklist", {"mine": "1", "partner": "Organization/harbor", "state": "accepted"}
    )
    search_count, _ = _statements(desk, "/web/worklist", {"q": "Family0042"})
    bound = 25  # sign-in check, the candidates (a query per kind), one per type for the page
    assert max(first_count, deep_count, filtered_count, search_count) <= bound, (
        first_count,
        deep_count,
        filtered_count,
        search_count,
    )
    assert len(row_patients(deep)) == PAGE_SIZE and row_patients(deep) != row_patients(first)


def test_the_number_of_queries_does_not_grow_with_the_referrals(desk: Desk):
    desk.sign_in("carla")
    counts = []
    for batch, size in (("", 120), ("b", 1200)):
        bulk_load(desk.database, _active_referrals(size, batch))
        counts.append(_statements(desk, "/web/worklist", {"page": "2"})[0])
    assert counts[0] == counts[1], counts


def test_a_browser_asking_for_the_root_lands_on_the_web_pages_and_api_clients_do_not(desk: Desk):
    html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    browser = desk.client.get("/", headers={"Accept": html})
    assert browser.status_code == 303 and browser.headers["location"] == "/web/"
    assert desk.client.get("/web/").headers["location"] == "/web/login"  # then: sign in
    api = desk.client.get("/", headers={"Accept": "application/fhir+json"})
    assert api.status_code == 401 and api.headers["content-type"].startswith(
        "application/fhir+json"
    )
    assert desk.client.get("/").status_code == 401  # no Accept: an API client, as before
    tokened = desk.client.get("/", headers={"Accept": html, "Authorization": "Bearer x"})
    assert tokened.status_code == 401  # a bearer token means an API client
    assert desk.client.get("/?_format=json", headers={"Accept": html}).status_code == 401
    desk.sign_in("carla")
    assert desk.client.get("/web/").headers["location"] == "/web/worklist"
    assert desk.client.get("/web/dashboard").headers["location"] == "/web/worklist"


def test_the_projection_the_worklist_reads_applies_the_callers_row_policy(desk: Desk):
    from fhir_gateway.security import TokenCaller
    from fhir_gateway.store.search import match_fields

    bulk_load(desk.database, _scenario())
    partner = TokenCaller(
        client_id="harbor-app",
        role="partner",
        organization="Organization/harbor",
        scopes=frozenset({"system/*.cruds"}),
    )
    fields = {"owner": ("owner", "reference")}
    with desk.database.session(readonly=True) as session:
        seen = match_fields(session, "Task", [("status", "accepted")], fields, caller=partner)
        hidden = match_fields(session, "Flag", [], {}, caller=partner)
    assert {t["id"] for t in seen} == {"t6", "t7", "t9"}  # its own; not elsewhere's t8
    assert {t["owner"] for t in seen} == {"Organization/harbor"}
    assert hidden == []  # a partner reads no Flags


_FOLLOW_UP = "http://fhir-gateway.org/fhir/ActivityDefinition/psychiatry-follow-up"


def _done_referral(
    task_id: str, pid: str, ended: str, activity: str | None
) -> list[dict[str, Any]]:
    """A completed referral Task, ended on ``ended``, for ``activity`` (a FUH one or none)."""
    request, task = referral(task_id, pid, status="completed", request_status="active")
    if activity:
        request["instantiatesCanonical"] = [activity]
    task["executionPeriod"] = {"end": ended}
    return [request, task]


def _recent_discharges(first: int, last: int) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Patients ``first``..``last - 1`` discharged recently, five ways in turn, and the worklist row
    each should have: missed, due (a housing referral done is no follow-up), a visit made, to
    hospice, a psychiatry follow-up referral done (the last three: no row)."""
    docs: list[dict[str, Any]] = []
    expected: dict[str, str] = {}
    for i in range(first, last):
        pid = f"d{i}"
        docs.append(patient(pid, "Pat", f"Discharged{i:03d}"))
        kind = i % 5
        if kind == 0:
            docs += discharge(pid, ago(days=12))
            expected[pid] = "follow-up-missed"
        elif kind == 1:
            docs += discharge(pid, ago(days=3))
            docs += _done_referral(f"housing{i}", pid, ago(days=1), None)
            expected[pid] = "follow-up-due"
        elif kind == 2:
            docs += discharge(pid, ago(days=5), seen=ago(days=3))
        elif kind == 3:
            docs += discharge(pid, ago(days=10), disposition="50")
        else:
            docs += discharge(pid, ago(days=4))
            docs += _done_referral(f"followed{i}", pid, ago(days=2), _FOLLOW_UP)
    return docs, expected


def _follow_up_rows(desk: Desk) -> dict[str, str]:
    """Every follow-up row of the worklist, page after page: patient → kind."""
    rows: dict[str, str] = {}
    number, pages = 1, 1
    while number <= pages:
        page = desk.client.get("/web/worklist", params={"page": str(number)}).text
        found = re.search(r"page \d+ of (\d+)", visible_text(page))
        pages = int(found.group(1)) if found else 1
        for kind, pid in zip(row_kinds(page), row_patients(page), strict=True):
            if kind.startswith("follow-up"):
                assert pid not in rows
                rows[pid] = kind
        number += 1
    return rows


@pytest.mark.slow  # scale: hundreds to thousands of rows seeded
def test_the_follow_ups_cost_the_same_number_of_queries_for_5_or_40_or_150_discharges(desk: Desk):
    desk.sign_in("carla")
    counts, expected = [], {}
    for first, last in ((0, 5), (5, 40), (40, 150)):
        docs, wanted = _recent_discharges(first, last)
        bulk_load(desk.database, docs)
        expected |= wanted
        counts.append(_statements(desk, "/web/worklist", {})[0])
        assert _follow_up_rows(desk) == expected
    assert counts[0] == counts[1], counts  # one query per kind of evidence, for all the patients
    assert counts[2] <= counts[1] + 10, counts  # past 100 patients: a second chunk of some
