"""The relapse-prevention plan written on the patient page and a partner's warning-signs report
from its inbox, in a real headless Chromium with the keyboard: the case manager writes Jane Doe's
plan with her (three signs in her words, what to do, when to be told); Harbor's worker takes the
referral on, opens "Report warning signs", ticks two early signs and sends them, and the case
manager has the work item with the plan's action. axe-core checks each page. Screenshots go to
$WEB_SCREENSHOTS (default: a temporary folder)."""

from __future__ import annotations

from typing import Any

from browser_helpers import shown, sign_in_with_keyboard, sign_out
from web_helpers import seed_caseload

from fhir_gateway import relapse
from fhir_gateway.monitors import MONITOR_FLAGS
from fhir_gateway.services import lookup

SIGNS = (
    ("Up all night, cleaning the flat", "early", "my sister"),
    ("Stop answering my phone", "early", "my case manager"),
    ("Hear the radio talking to me", "late", "me"),
)
ACTIONS = {
    "early": ("Keep my sleep routine; my sister stays over", "Carla Mendes 217-555-0101", "2"),
    "middle": ("See Dr Rao this week", "Dr Rao's clinic 217-555-0142", "2"),
    "late": ("Go to the crisis clinic today with my sister", "Crisis line 217-555-0199", "1"),
}


def _type(driver: Any, element_id: str, words: str) -> None:
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, element_id)
    field.location_once_scrolled_into_view  # noqa: B018
    field.send_keys(words)


def test_the_plan_is_written_on_the_page_and_a_partner_reports_against_it(
    database, live_server, browser, shots, axe
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    seed_caseload(database)
    database.write(relapse.seed)
    driver = browser
    sign_in_with_keyboard(driver, live_server, "cm")
    shown(driver, "h1", "Worklist")
    driver.get(f"{live_server}/web/patients/p1")
    shown(driver, "h1", "Jane Doe")
    for n, (text, stage, who) in enumerate(SIGNS, start=1):
        _type(driver, f"sign-text-{n}", text)
        Select(driver.find_element(By.ID, f"sign-stage-{n}")).select_by_value(stage)
        _type(driver, f"sign-who-{n}", who)
    for stage, (do, call, threshold) in ACTIONS.items():
        _type(driver, f"do_{stage}", do)
        _type(driver, f"call_{stage}", call)
        _type(driver, f"threshold_{stage}", threshold)
    _type(driver, "made_with", "Asha Doe (sister)")
    driver.find_element(By.ID, "plan-form").location_once_scrolled_into_view  # noqa: B018
    driver.save_screenshot(str(shots / "relapse-plan-1-form.png"))
    axe(driver)
    save = driver.find_element(By.XPATH, "//button[normalize-space()='Save the plan']")
    save.send_keys(Keys.ENTER)
    assert "Relapse-prevention plan saved" in shown(driver, "[role=status]", "plan saved")
    driver.find_element(By.ID, "relapse-h").location_once_scrolled_into_view  # noqa: B018
    driver.save_screenshot(str(shots / "relapse-plan-2-saved.png"))
    axe(driver)
    sign_out(driver)

    sign_in_with_keyboard(driver, live_server, "ann")
    shown(driver, "h1", "Referral inbox")
    accept = driver.find_element(By.CSS_SELECTOR, "form[action='/web/inbox/t1/accept'] button")
    accept.send_keys(Keys.ENTER)
    shown(driver, "[role=status]", "Referral accepted.")
    driver.find_element(By.CSS_SELECTOR, "a[href='/web/inbox/t1/warning-signs']").send_keys(
        Keys.ENTER
    )
    assert shown(driver, "h1", "Report warning signs") == "Report warning signs: Jane Doe"
    for box in driver.find_elements(By.CSS_SELECTOR, "input[name=sign]")[:2]:  # the early ones
        box.send_keys(Keys.SPACE)
    _type(driver, "other", "Missed two groups this week")
    _type(driver, "reporter_name", "Ann Lee, housing worker")
    driver.save_screenshot(str(shots / "relapse-plan-3-partner-report.png"))
    axe(driver)
    send = driver.find_element(
        By.XPATH, "//button[normalize-space()='Send the report to the case manager']"
    )
    send.send_keys(Keys.ENTER)
    assert "work item" in shown(driver, "[role=status]", "Warning signs reported")
    assert driver.current_url.endswith("/web/inbox?done=warning-signs-raised")
    driver.save_screenshot(str(shots / "relapse-plan-4-inbox.png"))
    axe(driver)

    (flag,) = database.read(
        lambda s: lookup.search(s, "Flag", [("_tag", f"{MONITOR_FLAGS}|warning-signs")])
    )
    text = flag["code"]["text"]
    assert "reported by a partner (Ann Lee, housing worker)" in text
    assert "“Up all night, cleaning the flat”" in text and "my sister stays over" in text
