"""The patient page in a real headless Chromium, with the keyboard: the highest-risk patient (a
suicide attempt, an ED visit six days after discharge) shows the crisis alert, the diagnosis and
the hospital visits, and the case manager acknowledges the alert with a note; a Part 2 consent
recorded from the signed form sends the referral waiting for it to its partner, who now sees it.
axe-core checks every page. Screenshots go to $WEB_SCREENSHOTS (default: a temporary folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from browser_helpers import shown, sign_in_with_keyboard, sign_out
from patient_helpers import PDF, World, advance_directive, patient_settings, seed_highest_risk


@pytest.fixture
def settings(database_url):  # type: ignore[no-untyped-def]  # auto plans, Chicago time, sign-in on
    return patient_settings(database_url)


@pytest.fixture
def world(database, app, live_server) -> World:  # type: ignore[no-untyped-def]
    return seed_highest_risk(database, app)


def _section(driver: Any, heading: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, f"section[aria-labelledby={heading}]").text)


def _sign_in(driver: Any, base: str, username: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    sign_in_with_keyboard(driver, base, username)
    WebDriverWait(driver, 20).until(lambda d: "/web/login" not in d.current_url)


def _open_patient(driver: Any, base: str, world: World) -> None:
    driver.get(f"{base}/web/patients/{world.patient_id}")
    shown(driver, "h1", "Jane Q Doe")


def test_the_highest_risk_patient_shows_the_alert_diagnosis_and_visits_and_the_alert_is_acknowledged(
    world, live_server, browser, shots, axe
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = browser
    _sign_in(driver, live_server, "cm")
    _open_patient(driver, live_server, world)
    banner = _section(driver, "alerts-h")
    assert "Crisis" in banner and "High priority" in banner and "yesterday at 10:00 pm" in banner
    diagnoses = _section(driver, "diagnoses-h")
    assert "Suicide attempt" in diagnoses and "T14.91" in diagnoses
    visits = _section(driver, "visits-h")
    assert "Emergency department visit" in visits and "day 6 after the discharge" in visits
    assert "Hospital stay" in visits
    driver.save_screenshot(str(shots / "patient-1-risk.png"))
    axe(driver)

    alert = driver.find_element(By.ID, f"alert-{world.crisis_flag}")
    summary = alert.find_element(By.TAG_NAME, "summary")
    driver.execute_script("arguments[0].focus()", summary)
    driver.switch_to.active_element.send_keys(Keys.ENTER)  # opens the form
    driver.switch_to.active_element.send_keys(Keys.TAB)  # to the note
    driver.switch_to.active_element.send_keys("Called Jane: she is safe; seen by Dr Smith today.")
    driver.save_screenshot(str(shots / "patient-2-acknowledging.png"))
    axe(driver)
    driver.switch_to.active_element.send_keys(Keys.TAB, Keys.ENTER)  # the Acknowledge button
    assert "Alert acknowledged." in shown(driver, "[role=status]", "Alert acknowledged.")
    banner = _section(driver, "alerts-h")
    assert "Acknowledged by cm" in banner and "seen by Dr Smith today" in banner
    assert "cm: Acknowledged the alert" in _section(driver, "timeline-h")
    driver.save_screenshot(str(shots / "patient-3-acknowledged.png"))
    axe(driver)


def _type_date(field: Any, iso: str) -> None:
    """A date as a person types it into Chromium's date field (en-US: month, day, year)."""
    year, month, day = iso.split("-")
    field.send_keys(month, day, year)


def test_a_part2_consent_sends_the_waiting_referral_to_the_partner_who_now_sees_it(
    world, live_server, browser, shots, axe, tmp_path: Path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    driver = browser
    _sign_in(driver, live_server, "prairie")
    assert "Addiction treatment programme" not in shown(driver, "main", "inbox")
    sign_out(driver)
    shown(driver, "h1", "Sign in")

    _sign_in(driver, live_server, "cm")
    _open_patient(driver, live_server, world)
    consents = _section(driver, "consents-h")
    assert "Prairie Recovery Services" in consents and "Addiction treatment programme" in consents
    driver.find_element(By.LINK_TEXT, "Record a Part 2 consent").send_keys(Keys.ENTER)
    shown(driver, "h1", "Record a Part 2 consent")
    axe(driver)

    signed = tmp_path / "signed-consent.pdf"
    signed.write_bytes(PDF)
    driver.find_element(
        By.CSS_SELECTOR, "input[name=partner][value='Organization/prairie-recovery']"
    ).send_keys(Keys.SPACE)
    driver.find_element(By.ID, "purpose-TREAT").send_keys(Keys.SPACE)
    driver.find_element(By.ID, "f-data_scope").send_keys(
        "My alcohol treatment records needed to arrange my care after discharge."
    )
    _type_date(driver.find_element(By.ID, "f-signed_on"), "2025-03-17")
    _type_date(driver.find_element(By.ID, "f-expires"), "2026-03-17")
    driver.find_element(By.ID, "f-document").send_keys(str(signed))
    # No signer chosen: the browser's own check would stop the form, so lift it to see ours.
    driver.execute_script("document.querySelector('form.consent-form').noValidate = true")
    driver.find_element(By.XPATH, "//button[normalize-space()='Record the consent']").send_keys(
        Keys.ENTER
    )
    problems = shown(driver, "[role=alert]", "Say who signed")
    assert "The consent was not recorded" in problems
    assert (
        driver.find_element(By.ID, "f-data_scope").get_attribute("value").startswith("My alcohol")
    )
    driver.save_screenshot(str(shots / "consent-1-problems.png"))
    axe(driver)

    Select(driver.find_element(By.ID, "f-signed_by")).select_by_visible_text(
        "Jane Q Doe (the patient)"
    )
    driver.find_element(By.ID, "f-document").send_keys(str(signed))  # a file is not kept
    driver.find_element(By.XPATH, "//button[normalize-space()='Record the consent']").send_keys(
        Keys.ENTER
    )
    done = shown(driver, "[role=status]", "Part 2 consent recorded.")
    assert "2 referrals waiting for it went to the partner." in done
    consents = _section(driver, "consents-h")
    assert "In force" in consents and "Yes" in consents
    plans = _section(driver, "plans-h")
    assert "Not sent yet" not in plans  # both referrals went out
    driver.save_screenshot(str(shots / "consent-2-recorded.png"))
    axe(driver)

    sign_out(driver)
    shown(driver, "h1", "Sign in")
    _sign_in(driver, live_server, "prairie")
    inbox = shown(driver, "main", "Addiction treatment programme")
    assert "Addiction treatment programme" in inbox
    driver.save_screenshot(str(shots / "consent-3-partner-inbox.png"))
    axe(driver)


def test_an_advance_directive_shows_first_with_its_refusal_and_representative(
    world, live_server, browser, shots, axe
):
    from fhir_gateway.context import SYSTEM
    from fhir_gateway.services import resources

    spouse = world.all("RelatedPerson")[0]["id"]
    directive = advance_directive(world.patient_id, f"RelatedPerson/{spouse}")
    with world.database.session() as session:
        resources.create(session, "Consent", directive, SYSTEM)
    driver = browser
    _sign_in(driver, live_server, "cm")
    _open_patient(driver, live_server, world)
    section = _section(driver, "directives-h")
    assert "Refuses: ECT" in section and "Nominated representative: John Doe" in section
    assert "never to emergency treatment (s9)" in section
    headings = [h.text for h in driver.find_elements("css selector", "main h2")]
    assert headings.index("Advance directives") < headings.index("Alerts and risk signals")
    assert "Proposed nominated representative" in _section(driver, "contacts-h")
    driver.save_screenshot(str(shots / "patient-directive.png"))
    axe(driver)
