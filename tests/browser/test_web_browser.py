"""The web pages in a real headless Chromium (Debian's ``chromium`` + ``chromedriver``, installed by
``.ci/browser-setup``; Selenium never downloads a browser here): a partner signs in with the
keyboard and takes a referral through accept → in progress → complete; each page refuses the
other role. Screenshots go to $WEB_SCREENSHOTS (default: a temporary directory)."""

from __future__ import annotations

from typing import Any

import pytest
from browser_helpers import shown, sign_in_with_keyboard, sign_out
from web_helpers import seed_caseload


def _form(driver: Any, task: str, action: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f"form[action='/web/inbox/{task}/{action}']")


def test_partner_takes_a_referral_through_to_completion_and_pages_refuse_the_other_role(
    database, live_server, browser, shots, axe
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    seed_caseload(database)
    driver = browser
    sign_in_with_keyboard(driver, live_server, "ann")
    assert shown(driver, "h1", "Referral inbox") == "Referral inbox"
    assert "Jane Doe" in driver.page_source and "MRN-SECRET-42" not in driver.page_source
    driver.save_screenshot(str(shots / "1-inbox.png"))
    axe(driver)

    _form(driver, "t1", "accept").find_element(By.TAG_NAME, "button").send_keys(Keys.ENTER)
    assert "Referral accepted." in shown(driver, "[role=status]", "Referral accepted.")
    _form(driver, "t1", "start").find_element(By.TAG_NAME, "button").send_keys(Keys.ENTER)
    assert "Referral marked in progress." in shown(
        driver, "[role=status]", "Referral marked in progress."
    )
    complete = _form(driver, "t1", "complete")
    complete.find_element(By.XPATH, "./ancestor::details/summary").send_keys(Keys.ENTER)  # opens it
    Select(complete.find_element(By.NAME, "result")).select_by_value("service-provided")
    complete.find_element(By.TAG_NAME, "textarea").send_keys("Housing found; moved in on day 9")
    driver.save_screenshot(str(shots / "2-in-progress.png"))
    complete.find_element(By.CSS_SELECTOR, "button[type=submit]").send_keys(Keys.ENTER)
    assert "Referral completed." in shown(driver, "[role=status]", "Referral completed.")
    driver.find_element(By.PARTIAL_LINK_TEXT, "Closed (").send_keys(Keys.ENTER)
    closed = shown(driver, "ol.cards", "Housing found")
    assert "Done" in closed and "Housing found; moved in on day 9" in closed

    driver.get(f"{live_server}/web/worklist")  # a partner may not see the caseload
    assert driver.find_element(By.TAG_NAME, "h1").text == "Not allowed"
    assert "Jane" not in driver.page_source
    driver.save_screenshot(str(shots / "3-refused.png"))
    axe(driver)

    driver.get(f"{live_server}/web/inbox")
    sign_out(driver)
    shown(driver, "h1", "Sign in")
    axe(driver)  # the sign-in page
    sign_in_with_keyboard(driver, live_server, "cm")
    assert shown(driver, "h1", "Worklist") == "Worklist"
    work = driver.find_element(By.CSS_SELECTOR, "main").text
    assert "No partner" in work and "Jane Doe" in work  # t2: open to any partner, none took it
    driver.save_screenshot(str(shots / "4-worklist.png"))
    axe(driver)
    driver.get(f"{live_server}/web/inbox")  # and a case manager has no partner inbox
    assert driver.find_element(By.TAG_NAME, "h1").text == "Not allowed"
    driver.get(f"{live_server}/web/patients/p1")
    timeline = driver.find_element(By.CSS_SELECTOR, "ol.timeline").text
    assert (
        "accepted by the partner" in timeline
        and "in progress" in timeline
        and "Housing support (Harbor Housing): done" in timeline
        and "Harbor Housing" in timeline
    )
    driver.save_screenshot(str(shots / "5-patient.png"))
    axe(driver)
    for form in ("part2", "family"):  # the consent forms
        driver.get(f"{live_server}/web/patients/p1/consents/{form}")
        assert "consent" in driver.find_element(By.TAG_NAME, "h1").text.lower()
        axe(driver)
    driver.get(f"{live_server}/web/patients/nobody")  # the error page
    assert "There is no patient nobody." in driver.page_source
    axe(driver)


def test_the_accessibility_check_fails_a_page_that_breaks_wcag(browser, axe):
    # The check the other browser tests rely on: a form field without a label, and grey on white.
    browser.get(
        "data:text/html,<!doctype html><html lang=en><title>t</title><main>"
        "<input type=text><p style='color:%23bbb'>faint</p></main></html>"
    )
    with pytest.raises(AssertionError) as failure:
        axe(browser)
    assert "label" in str(failure.value) and "color-contrast" in str(failure.value)
