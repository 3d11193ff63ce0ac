"""A screening's additions to the plan, approved and declined on the patient page in a real
headless Chromium with the keyboard; axe-core checks the page; screenshots to $WEB_SCREENSHOTS."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from browser_helpers import shown, sign_in_with_keyboard
from careplan_helpers import ZONE
from held_helpers import CALL, SAFETY, search, world
from web_helpers import web_settings
from workflow_helpers import ManualClock


@pytest.fixture
def settings(database_url):  # type: ignore[no-untyped-def]  # review mode, Chicago, sign-in on
    return web_settings(database_url, careplan_mode="review", sender_zones={"STMARYS": ZONE})


def test_the_case_manager_approves_and_declines_a_screenings_additions(
    database, app, live_server, browser, shots, axe
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    ManualClock(datetime(2025, 3, 12, 15, 0, tzinfo=UTC))
    patient_id, held = world(database, app)
    driver: Any = browser
    sign_in_with_keyboard(driver, live_server, "cm")
    WebDriverWait(driver, 20).until(lambda d: "/web/login" not in d.current_url)
    driver.get(f"{live_server}/web/patients/{patient_id}")
    section = driver.find_element(By.CSS_SELECTOR, "section[aria-labelledby=held-h]")
    driver.execute_script("arguments[0].scrollIntoView()", section)
    assert SAFETY in section.text and CALL in section.text
    axe(driver)
    driver.save_screenshot(str(shots / "held-1-waiting.png"))

    approve = section.find_elements(
        By.XPATH, ".//button[starts-with(normalize-space(), 'Approve')]"
    )
    approve[0].send_keys(Keys.ENTER)
    shown(driver, ".done, .notice, [role=status]", "Approved")
    driver.save_screenshot(str(shots / "held-2-approved.png"))
    section = driver.find_element(By.CSS_SELECTOR, "section[aria-labelledby=held-h]")
    decline = section.find_element(By.XPATH, ".//button[starts-with(normalize-space(), 'Decline')]")
    decline.send_keys(Keys.ENTER)
    shown(driver, ".done, .notice, [role=status]", "Declined")
    assert driver.find_elements(By.CSS_SELECTOR, "section[aria-labelledby=held-h]") == []
    axe(driver)
    driver.save_screenshot(str(shots / "held-3-decided.png"))
    statuses = {r["code"]["text"]: r["status"] for r in search(database, "ServiceRequest")}
    assert {statuses[SAFETY], statuses[CALL]} == {"active", "revoked"}
