"""Measurement-based care on the patient page in a real headless Chromium: the PHQ-9 due after
the discharge, the chart of the totals with its thresholds, and the PHQ-9 asked with the keyboard
through the generic questionnaire form. axe-core checks every page; screenshots go to
$WEB_SCREENSHOTS."""

from __future__ import annotations

from typing import Any

import pytest
from browser_helpers import shown, sign_in_with_keyboard
from mbc_helpers import GAD7, PHQ9, total
from patient_helpers import World, patient_settings, seed_highest_risk


@pytest.fixture
def settings(database_url):  # type: ignore[no-untyped-def]  # auto plans, Chicago time, sign-in on
    return patient_settings(database_url)


@pytest.fixture
def world(database, app, live_server) -> World:  # type: ignore[no-untyped-def]
    from fhir_gateway.context import SYSTEM
    from fhir_gateway.services import resources

    world = seed_highest_risk(database, app)
    patient = f"Patient/{world.patient_id}"
    with database.session() as session:
        for doc in (PHQ9, GAD7):
            resources.update(session, "Questionnaire", doc["id"], doc, SYSTEM)
        for obs_id, code, value, when in (
            ("phq-1", "44261-6", 19, "2025-03-11T10:00:00-05:00"),
            ("phq-2", "44261-6", 14, "2025-03-24T10:00:00-05:00"),
            ("phq-3", "44261-6", 9, "2025-04-09T10:00:00-05:00"),
            ("phq-4", "44261-6", 4, "2025-05-09T10:00:00-05:00"),
            ("gad-1", "70274-6", 12, "2025-03-11T10:00:00-05:00"),
            ("gad-2", "70274-6", 7, "2025-04-09T10:00:00-05:00"),
        ):
            doc = total(patient, code, value, when, obs_id)
            resources.update(session, "Observation", obs_id, doc, SYSTEM)
    return world


def test_the_chart_of_the_totals_and_the_phq9_asked_with_the_keyboard(
    world, live_server, browser, shots, axe
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver: Any = browser
    sign_in_with_keyboard(driver, live_server, "cm")
    WebDriverWait(driver, 20).until(lambda d: "/web/login" not in d.current_url)
    driver.get(f"{live_server}/web/patients/{world.patient_id}")
    shown(driver, "h1", "Jane Q Doe")
    section = driver.find_element(By.CSS_SELECTOR, "section[aria-labelledby=measures-h]")
    driver.execute_script("arguments[0].scrollIntoView()", section)
    assert "PHQ-9 at day 14" in section.text and "Ask now" in section.text
    chart = driver.find_element(By.CSS_SELECTOR, "svg#trend-phq-9, svg.trend")
    assert chart.size["width"] > 300 and chart.size["height"] > 100
    labels = [t.text for t in chart.find_elements(By.TAG_NAME, "text")]
    assert {"19", "14", "9", "4"} <= set(labels)
    assert "Remission: below 5" in labels
    assert any(label.startswith("Response: 9.5 or less") for label in labels)
    assert "9" in section.text and "Yes" in section.text  # the table: 19 → 9 is a response
    driver.save_screenshot(str(shots / "measures-1-chart.png"))
    axe(driver)

    link = section.find_element(By.XPATH, ".//a[contains(., 'PHQ-9 at day 14')]")
    link.send_keys(Keys.ENTER)
    shown(driver, "h1", "PHQ-9")
    first = driver.find_element(By.ID, "a-0-0")
    driver.execute_script("arguments[0].focus()", first)
    for _ in range(9):  # each question: arrow to "Several days", tab to the next group
        driver.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
        driver.switch_to.active_element.send_keys(Keys.TAB)
    driver.save_screenshot(str(shots / "measures-2-form.png"))
    axe(driver)
    driver.switch_to.active_element.send_keys(Keys.ENTER)  # the Save button
    shown(driver, "[role=status]", "The answers were saved")
    driver.save_screenshot(str(shots / "measures-3-saved.png"))
    axe(driver)
    (response,) = world.all("QuestionnaireResponse")
    codes = [i["answer"][0]["valueCoding"]["code"] for i in response["item"]]
    assert codes == ["LA6569-3"] * 9  # "Several days" everywhere
