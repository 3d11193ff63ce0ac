"""The partner inbox through the TestClient: what a card tells a partner (why, by when in the
facility's time, how to reach the case manager and the patient) and no more than privacy allows;
filters, sorting and paging over many referrals; and the case manager's referral page with the
messages of both sides."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from inbox_helpers import (
    ASKED,
    DIAGNOSIS,
    HOUSING,
    put,
    read,
    seed_part2_referral,
    seed_referral_context,
)
from security_data import consent
from sqlalchemy import event
from web_helpers import csrf, seed_caseload, sign_in, web_client

from fhir_gateway import clock
from fhir_gateway.context import SYSTEM
from fhir_gateway.privacy import ACT_CODE
from fhir_gateway.services import resources
from fhir_gateway.store.search import match_ids

NOW = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)  # Wed 25 Nov, 12:00 pm in Springfield, IL
PEER = {
    "coding": [
        {
            "system": "http://fhir-gateway.org/fhir/CodeSystem/referral-service",
            "code": "peer-support",
        }
    ],
    "text": "Peer support",
}


@pytest.fixture
def web(database, database_url) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    clock.set_clock(lambda: NOW)
    with web_client(database, database_url, default_sender_zone="America/Chicago") as client:
        seed_caseload(database, deadline="2026-11-28T05:59:59Z")  # the app's hooks label it
        seed_referral_context(database)
        yield client


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def _cards(page: str) -> list[str]:
    return re.findall(r'<article class="referral[^"]*" id="t-([^"]+)"', page)


def test_a_card_says_why_by_when_and_how_to_reach_the_case_manager_and_the_patient(web):
    sign_in(web, "ann")
    card = _text(web.get("/web/inbox").text)
    assert f"Why {DIAGNOSIS}" in card and f"What is asked {ASKED}" in card
    # the deadline in Springfield's time, in words: 05:59 UTC on the 28th is 11:59 pm on the 27th
    assert "Respond by Fri 27 Nov at 11:59 pm (in 2 days)" in card
    assert "Case manager Dana Reyes Phone: +1-217-555-0142 Email: dana.reyes@care.example" in card
    assert "Jane Doe , born 3 Feb 1980 Phone: 555-0100" in card
    assert "MRN-SECRET-42" not in card and "F32.2" not in card


def test_part2_reasons_reach_the_partner_only_under_the_patients_consent(web, database):
    seed_part2_referral(database)
    with database.session() as session:
        request = dict(resources.read(session, "ServiceRequest", "sr-sud", SYSTEM).content)
        put(
            session,
            {
                **request,
                "reasonReference": [
                    {"reference": "Condition/c-aud", "display": "Alcohol use disorder"}
                ],
            },
        )
    sign_in(web, "ann")
    without = web.get("/web/inbox").text
    assert "New (2)" in without and "Alcohol use disorder" not in without
    with database.session() as session:
        doc = consent("p1", "Organization/harbor")
        resources.create(session, "Consent", doc, SYSTEM)
    granted = web.get("/web/inbox").text
    assert "New (3)" in granted and "Alcohol use disorder" in granted


def test_a_diagnosis_named_in_a_less_protected_referral_stays_hidden(web, database):
    seed_part2_referral(database)  # Condition c-aud: 42 CFR Part 2
    with database.session() as session:  # a referral labelled PSY only that names it in words
        request = dict(resources.read(session, "ServiceRequest", "sr1", SYSTEM).content)
        put(
            session,
            {
                **request,
                "meta": {"security": [{"system": ACT_CODE, "code": "PSY"}]},
                "reasonReference": [
                    *request["reasonReference"],
                    {"reference": "Condition/c-aud", "display": "Alcohol use disorder"},
                ],
            },
        )
    sign_in(web, "ann")
    card = _text(web.get("/web/inbox").text)
    assert f"Why {DIAGNOSIS}" in card and "Alcohol use disorder" not in card
    sign_in(web, "cm")  # the care team reads the diagnosis itself
    assert f"Why {DIAGNOSIS} Alcohol use disorder" in _text(web.get("/web/referrals/t1").text)


# -- many referrals: filters, sorting, paging -------------------------------------------------------


def _seed_many(database: Any, count: int) -> dict[str, dict[str, Any]]:
    """``count`` referrals owned by harbor: every third overdue, every third due within two
    days, every other one peer support, every fourth accepted; received an hour apart."""
    made: dict[str, dict[str, Any]] = {}
    with database.session() as session:
        put(
            session,
            {
                "resourceType": "HealthcareService",
                "id": "harbor-peer",
                "active": True,
                "providedBy": {"reference": "Organization/harbor"},
                "type": [{"coding": PEER["coding"]}],
            },
        )
        for i in range(count):
            due = (
                NOW
                + {0: timedelta(days=-1 - i), 1: timedelta(hours=6 + i), 2: timedelta(days=5 + i)}[
                    i % 3
                ]
            )
            put(
                session,
                {
                    "resourceType": "ServiceRequest",
                    "id": f"sr-{i}",
                    "status": "active",
                    "intent": "order",
                    "code": PEER if i % 2 else HOUSING,
                    "subject": {"reference": "Patient/p1"},
                },
            )
            task = put(
                session,
                {
                    "resourceType": "Task",
                    "id": f"m{i:03d}",
                    "status": "accepted" if i % 4 == 0 else "requested",
                    "intent": "order",
                    "focus": {"reference": f"ServiceRequest/sr-{i}"},
                    "for": {"reference": "Patient/p1"},
                    "owner": {"reference": "Organization/harbor"},
                    "requester": {"reference": "Organization/care-coordination"},
                    "lastModified": (NOW - timedelta(hours=i)).isoformat(),
                    "restriction": {"period": {"end": due.isoformat()}},
                },
            )
            made[task["id"]] = {"due": due, "peer": bool(i % 2), "status": task["status"]}
    return made


def _pages(web: TestClient, url: str) -> list[list[str]]:
    pages = []
    while url:
        page = web.get(url)
        assert page.status_code == 200, page.text
        pages.append(_cards(page.text))
        found = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        url = found.group(1).replace("&amp;", "&") if found else ""
    return pages


@pytest.mark.slow  # scale: hundreds to thousands of rows seeded
def test_hundreds_of_cards_are_paged_in_deadline_order_without_repeats(web, database):
    made = _seed_many(database, 45)
    sign_in(web, "ann")
    pages = _pages(web, "/web/inbox")
    assert [len(p) for p in pages] == [20, 20, 7]  # and seed_caseload's t1 and t2
    shown = [c for p in pages for c in p]
    assert len(set(shown)) == len(shown) == 47
    mine = [c for c in shown if c in made]
    assert mine == sorted(made, key=lambda t: made[t]["due"])
    second = web.get(
        re.search(r'<a href="([^"]+)" rel="next">', web.get("/web/inbox").text)
        .group(1)
        .replace("&amp;", "&")
    ).text
    back = re.search(r'<a href="([^"]+)" rel="prev">', second).group(1).replace("&amp;", "&")
    assert _cards(web.get(back).text) == pages[0]


def test_filters_and_sorting_narrow_and_order_the_cards(web, database):
    made = _seed_many(database, 24)
    sign_in(web, "ann")
    overdue = [c for p in _pages(web, "/web/inbox?due=overdue") for c in p if c in made]
    assert sorted(overdue) == sorted(t for t, m in made.items() if m["due"] < NOW)
    soon = [c for p in _pages(web, "/web/inbox?due=2d") for c in p if c in made]
    assert sorted(soon) == sorted(
        t for t, m in made.items() if NOW <= m["due"] <= NOW + timedelta(days=2)
    )
    service = "http://fhir-gateway.org/fhir/CodeSystem/referral-service|peer-support"
    peer = [c for p in _pages(web, f"/web/inbox?service={service}") for c in p]  # t1, t2: housing
    assert sorted(peer) == sorted(t for t, m in made.items() if m["peer"])
    received = [c for p in _pages(web, "/web/inbox?sort=received") for c in p if c in made]
    assert received == sorted(made)  # m000 arrived last: newest first
    tabs = _text(web.get("/web/inbox").text)
    accepted = sum(1 for m in made.values() if m["status"] == "accepted")
    assert f"New ({len(made) - accepted + 2})" in tabs  # and seed_caseload's t1, t2
    assert f"Accepted and in progress ({accepted})" in tabs
    bad = web.get("/web/inbox?due=soonish")
    assert bad.status_code == 400 and "The inbox cannot show due=&#39;soonish&#39;" in bad.text
    stale = web.get("/web/inbox?page=not-a-page-token")
    assert stale.status_code == 400 and "start again from the first page" in stale.text
    foreign = web.get("/web/inbox?service=http://x|crisis-bed")
    assert foreign.status_code == 400 and "services your organisation offers" in foreign.text


@pytest.mark.slow  # scale: hundreds to thousands of rows seeded
def test_a_page_costs_the_same_queries_however_many_referrals_wait(database, database_url):
    clock.set_clock(lambda: NOW)
    with web_client(database, database_url) as web:
        seed_caseload(database)
        _seed_many(database, 25)
        sign_in(web, "ann")
        few = _statements(database, lambda: web.get("/web/inbox"))
        _seed_more(database, 25, 120)
        many = _statements(database, lambda: web.get("/web/inbox"))
    assert many == few


def _seed_more(database: Any, start: int, stop: int) -> None:
    with database.session() as session:
        for i in range(start, stop):
            put(
                session,
                {
                    "resourceType": "Task",
                    "id": f"m{i:03d}",
                    "status": "requested",
                    "intent": "order",
                    "focus": {"reference": f"ServiceRequest/sr-{i % 25}"},
                    "for": {"reference": "Patient/p1"},
                    "owner": {"reference": "Organization/harbor"},
                    "restriction": {"period": {"end": (NOW + timedelta(days=i)).isoformat()}},
                },
            )


def _statements(database: Any, run: Any) -> int:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        assert run().status_code == 200
    finally:
        event.remove(database.engine, "before_cursor_execute", count)
    return len(seen)


# -- the case manager's referral page and the messages both ways ---------------------------------------


def test_messages_go_both_ways_and_the_referral_page_shows_the_whole_referral(web, database):
    sign_in(web, "ann")
    inbox = web.get("/web/inbox").text
    sent = web.post(
        "/web/inbox/t1/message",
        data={
            "csrf_token": csrf(inbox),
            "text": "Jane asked to meet on Friday instead.",
            "back": "/web/inbox?sort=received",
        },
    )
    assert sent.status_code == 303 and sent.headers["location"].startswith(
        "/web/inbox?sort=received&done=message"
    )
    assert web.get("/web/referrals/t1").status_code == 403  # the case manager's page

    sign_in(web, "cm")
    page = web.get("/web/referrals/t1")
    assert page.status_code == 200
    text = _text(page.text)
    assert "Housing support for Jane Doe" in text and "Waiting for the partner" in text
    assert "Partner Harbor Housing" in text and f"Why {DIAGNOSIS}" in text
    assert "Coordinated by Dana Reyes" in text
    assert "Messages with the partner (1)" in text
    assert "Harbor Housing · today at 12:00 pm Jane asked to meet on Friday instead." in text
    question = read_message_ids(database)[0]
    assert f'name="answering" value="Communication/{question}"' in page.text
    clock.set_clock(lambda: NOW + timedelta(minutes=5))  # the answer comes a little later
    reply = web.post(
        "/web/referrals/t1/message",
        data={
            "csrf_token": csrf(page.text),
            "text": "Friday is fine.",
            "answering": f"Communication/{question}",
        },
    )
    assert reply.status_code == 303
    answer = read(database, f"Communication/{read_message_ids(database)[1]}")
    assert answer["inResponseTo"] == [{"reference": f"Communication/{question}"}]
    assert answer["recipient"] == [{"reference": "Organization/harbor"}]
    assert (
        "Care Coordination Team (sent from your side) · today at 12:05 pm Friday is fine."
        in _text(web.get("/web/referrals/t1").text)
    )

    sign_in(web, "ann")
    card = _text(web.get("/web/inbox").text)
    assert "Messages with the case manager (2) · new reply" in card
    assert "Care Coordination Team · today at 12:05 pm Friday is fine." in card
    missing = web.get("/web/referrals/nope")
    assert missing.status_code == 403  # a partner never reaches the page, known or not


def read_message_ids(database: Any) -> list[str]:
    """The messages on t1, in the order they were sent."""
    with database.session(readonly=True) as session:
        ids = match_ids(session, "Communication", [("based-on", "Task/t1")], caller=SYSTEM)
    return sorted(ids, key=lambda i: read(database, f"Communication/{i}")["sent"])


def test_the_referral_page_lists_the_alert_the_partner_raised_and_refuses_unknown_referrals(
    web, database
):
    sign_in(web, "ann")
    page = web.get("/web/inbox").text
    version = re.search(
        r'action="/web/inbox/t1/accept">\s*<input[^>]*>\s*<input type="hidden" name="version" value="(\d+)"',
        page,
    ).group(1)
    web.post("/web/inbox/t1/accept", data={"csrf_token": csrf(page), "version": version})
    page = web.get("/web/inbox").text
    version = re.search(
        r'action="/web/inbox/t1/close" class="stack">\s*<input[^>]*>\s*<input type="hidden" name="version" value="(\d+)"',
        page,
    ).group(1)
    closed = web.post(
        "/web/inbox/t1/close",
        data={
            "csrf_token": csrf(page),
            "version": version,
            "reason": "unable-to-contact",
            "note": "Three calls and a letter",
        },
    )
    assert closed.status_code == 303
    task = read(database, "Task/t1")
    assert task["status"] == "failed"
    assert task["statusReason"]["coding"][0]["code"] == "unable-to-contact"
    sign_in(web, "cm")
    text = _text(web.get("/web/referrals/t1").text)
    assert "Alerts about this referral (1)" in text
    assert "Harbor Housing could not contact the patient" in text
    assert (
        "Could not be done" in text
        and "Unable to contact the patient: Three calls and a letter" in text
    )
    board = _text(web.get("/web/dashboard", follow_redirects=True).text)
    assert "Harbor Housing could not contact the patient" in board  # a work item there
    missing = web.get("/web/referrals/nope")
    assert missing.status_code == 404 and "There is no referral nope." in missing.text
