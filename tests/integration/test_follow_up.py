"""Follow-up after a psychiatric discharge on the patient page: the 7- and 30-day windows of the
latest discharge in words (met on a day, open with the days left, missed, excluded and why), as the
monitors' FUH outcome has it, on a fixed clock (Wed 25 Nov 2026, Chicago)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from worklist_helpers import NOW, Desk, bulk_load, desk_for, discharge, patient, visible_text

from fhir_gateway import clock

AT = datetime.fromisoformat(NOW)


def ago(**delta: float) -> str:
    return (AT - timedelta(**delta)).isoformat()


@pytest.fixture
def desk(database, database_url) -> Iterator[Desk]:  # type: ignore[no-untyped-def]
    clock.set_clock(lambda: AT)
    with desk_for(database, database_url) as desk:
        bulk_load(
            database,
            [
                patient("missed", "Pat", "Missed"),
                *discharge("missed", ago(days=12)),
                patient("open", "Pat", "Pending"),
                *discharge("open", ago(days=3)),
                patient("met", "Pat", "Seen"),
                *discharge("met", ago(days=5), seen=ago(days=3)),
                patient("hospice", "Pat", "Hospice"),
                *discharge("hospice", ago(days=10), disposition="50"),
                patient("never", "Pat", "Never"),
            ],
        )
        desk.sign_in("carla")
        yield desk


def _follow_up(desk: Desk, pid: str) -> str:
    page = desk.client.get(f"/web/patients/{pid}")
    assert page.status_code == 200, page.text
    text = visible_text(page.text)
    assert "Follow-up after the discharge on" in text, pid
    return text.split("Follow-up after the discharge on", 1)[1].split("Family and contacts")[0]


def test_a_follow_up_on_day_two_meets_both_windows(desk: Desk):
    words = _follow_up(desk, "met")
    assert "Fri 20 Nov" in words
    assert "Within 7 days met on Sun 22 Nov" in words
    assert "Within 30 days met on Sun 22 Nov" in words


def test_an_open_window_says_how_many_days_are_left(desk: Desk):
    words = _follow_up(desk, "open")
    assert "Within 7 days not yet, 4 days left (until Sun 29 Nov)" in words
    assert "Within 30 days not yet, 27 days left" in words


def test_a_closed_window_without_a_visit_is_missed_and_the_30_days_still_run(desk: Desk):
    words = _follow_up(desk, "missed")
    assert "Within 7 days missed (the window closed Fri 20 Nov)" in words
    assert "Within 30 days not yet, 18 days left (until Sun 13 Dec)" in words


def test_a_discharge_to_hospice_is_excluded_and_says_why(desk: Desk):
    words = _follow_up(desk, "hospice")
    assert "Within 7 days excluded: discharged to hospice" in words
    assert "Within 30 days excluded: discharged to hospice" in words


def test_a_patient_never_discharged_shows_no_follow_up(desk: Desk):
    page = desk.client.get("/web/patients/never")
    assert page.status_code == 200
    assert "Follow-up after the discharge" not in visible_text(page.text)
