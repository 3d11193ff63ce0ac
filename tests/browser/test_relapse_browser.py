"""The patient page's relapse risk summary and warning-signs form in a real headless Chromium: Jane
Doe on day 8 after her discharge (no follow-up yet, an ED visit on day 6, a refill late, her PHQ-9
up from 9 to 16) shows exactly those signals with their dates and sources; her mother's report of
a late-stage sign, entered with the keyboard, adds the warning-signs signal and the plan's action.
axe-core checks each page. Screenshots go to $WEB_SCREENSHOTS (default: a temporary folder)."""

from __future__ import annotations

from typing import Any

import pytest
from browser_helpers import shown, sign_in_with_keyboard
from monitor_helpers import local
from patient_helpers import World, patient_settings, seed_highest_risk
from relapse_helpers import create, plan

from fhir_gateway import relapse
from fhir_gateway.context import SYSTEM
from fhir_gateway.monitors import codes


@pytest.fixture
def settings(database_url):  # type: ignore[no-untyped-def]  # auto plans, Chicago time, sign-in on
    return patient_settings(database_url)


@pytest.fixture
def world(database, app, live_server) -> World:  # type: ignore[no-untyped-def]
    world = seed_highest_risk(database, app)
    patient = f"Patient/{world.patient_id}"
    database.write(relapse.seed)
    create(database, plan(patient))
    refill = {
        "resourceType": "Flag",
        "meta": {"tag": [codes.tag(codes.REFILL_LATE)]},
        "status": "active",
        "code": {
            "coding": [codes.coding(codes.REFILL_LATE)],
            "text": "Olanzapine 10 mg: supply ran out on 13 Mar, no refill (5 days late)",
        },
        "subject": {"reference": patient},
        "period": {"start": "2025-03-18T07:00:00-05:00"},
    }
    create(database, refill, SYSTEM)
    for total, when in ((9, "2025-03-11T10:00:00-05:00"), (16, "2025-03-17T11:00:00-05:00")):
        phq9 = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": relapse.PHQ9_LOINC}]},
            "subject": {"reference": patient},
            "effectiveDateTime": when,
            "valueInteger": total,
        }
        create(database, phq9, SYSTEM)
    world.clock.now = local("20250318090000")  # day 8: the 7-day window closed yesterday
    return world


def _summary(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [li.text for li in driver.find_elements(By.CSS_SELECTOR, "ul.risk-summary li")]


def test_the_risk_summary_lists_the_active_signals_and_a_report_adds_warning_signs(
    world, live_server, browser, shots, axe
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = browser
    sign_in_with_keyboard(driver, live_server, "cm")
    WebDriverWait(driver, 20).until(lambda d: "/web/login" not in d.current_url)
    driver.get(f"{live_server}/web/patients/{world.patient_id}")
    shown(driver, "h1", "Jane Q Doe")
    lines = _summary(driver)
    assert [line.split(" · ")[0] for line in lines] == [
        "ED visit",
        "Refill gap or missed injection",
        "PHQ-9 worse",
        "7-day follow-up missed",
    ]
    assert "Sun 16 Mar at 10:00 pm" in lines[0] and "(from its alert below" in lines[0]
    assert "Olanzapine 10 mg" in lines[1] and "today at 7:00 am" in lines[1]
    assert "PHQ-9 16 (moderately severe), up from 9 (mild)" in lines[2] and "yesterday" in lines[2]
    assert "Mon 10 Mar" in lines[3] and "(from the follow-up of the discharge" in lines[3]
    driver.find_element(By.ID, "active-h").location_once_scrolled_into_view  # noqa: B018
    driver.save_screenshot(str(shots / "relapse-1-risk-summary.png"))
    axe(driver)

    voices = driver.find_element(By.CSS_SELECTOR, "input[name=sign][value=voices]")
    voices.location_once_scrolled_into_view  # noqa: B018
    voices.send_keys(Keys.SPACE)
    Select(driver.find_element(By.ID, "reporter")).select_by_visible_text("Family or carer")
    driver.find_element(By.ID, "reporter_name").send_keys("Lakshmi (mother), by phone")
    driver.save_screenshot(str(shots / "relapse-2-report-form.png"))
    driver.find_element(
        By.XPATH, "//button[normalize-space()='Record the warning signs']"
    ).send_keys(Keys.ENTER)
    shown(driver, "[role=status]", "Warning signs recorded")
    lines = _summary(driver)
    assert lines[1].startswith("Warning signs · today at 9:00 am")
    assert "“Hear the neighbours plotting through the wall”" in lines[1]
    assert "Go to the crisis clinic today with my mother" in lines[1]
    driver.save_screenshot(str(shots / "relapse-3-after-report.png"))
    axe(driver)
