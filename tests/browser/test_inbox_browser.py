"""The partner inbox and the case manager's referral page in a real headless Chromium, with the
keyboard where a person would use it: a partner that cannot reach the patient closes the referral
and the case manager finds the alert on the dashboard and on the referral page; a partner writes
to the case manager, who answers, and each reads the other's message. axe-core checks every page.
Screenshots go to $WEB_SCREENSHOTS (default: a temporary directory)."""

from __future__ import annotations

from typing import Any

from browser_helpers import shown, sign_in_with_keyboard, sign_out
from inbox_helpers import DIAGNOSIS, seed_referral_context
from web_helpers import seed_caseload


def _form(driver: Any, task: str, action: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f"form[action='/web/inbox/{task}/{action}']")


def _open(details_child: Any) -> None:
    """Open the <details> around a form with the keyboard (Enter on its summary)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    summary = details_child.find_element(By.XPATH, "./ancestor::details/summary")
    summary.send_keys(Keys.ENTER)


def _type_and_send(driver: Any, form: Any, words: str) -> None:
    """Type into the form's message box and send it with Tab, Enter."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    form.find_element(By.TAG_NAME, "textarea").send_keys("")  # focus the field, as Tab would
    driver.switch_to.active_element.send_keys(words, Keys.TAB)
    driver.switch_to.active_element.send_keys(Keys.ENTER)  # the Send button


def test_unable_to_contact_raises_an_alert_the_case_manager_sees(
    database, live_server, browser, shots, axe
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    seed_caseload(database)
    seed_referral_context(database)
    driver = browser
    sign_in_with_keyboard(driver, live_server, "ann")
    assert shown(driver, "h1", "Referral inbox") == "Referral inbox"
    axe(driver)
    _form(driver, "t1", "accept").find_element(By.TAG_NAME, "button").send_keys(Keys.ENTER)
    assert "Referral accepted." in shown(driver, "[role=status]", "Referral accepted.")

    close = _form(driver, "t1", "close")
    _open(close)
    Select(close.find_element(By.NAME, "reason")).select_by_visible_text(
        "Unable to contact the patient"
    )
    close.find_element(By.TAG_NAME, "textarea").send_keys("Three calls, no answer; letter sent")
    driver.save_screenshot(str(shots / "inbox-1-close.png"))
    axe(driver)  # with the form open
    close.find_element(By.CSS_SELECTOR, "button[type=submit]").send_keys(Keys.ENTER)
    assert "The case manager has been told." in shown(
        driver, "[role=status]", "The case manager has been told."
    )

    sign_out(driver)
    shown(driver, "h1", "Sign in")
    sign_in_with_keyboard(driver, live_server, "cm")  # lands on the case manager's start page
    start = shown(driver, "main", "could not contact the patient")  # the dashboard's work items
    assert "Jane Doe" in start and "Harbor Housing could not contact the patient" in start
    assert "Three calls, no answer; letter sent" in start
    driver.save_screenshot(str(shots / "inbox-2-dashboard.png"))
    axe(driver)

    driver.find_element(By.CSS_SELECTOR, "main a[href='/web/referrals/t1']").send_keys(Keys.ENTER)
    alerts = shown(driver, "section[aria-labelledby=alerts-h]", "could not contact")
    assert "Alerts about this referral (1)" in alerts
    summary = driver.find_element(By.CSS_SELECTOR, "section[aria-labelledby=summary-h]").text
    assert "Could not be done" in summary and "Unable to contact the patient" in summary
    driver.save_screenshot(str(shots / "inbox-3-referral.png"))
    axe(driver)


def test_a_message_from_the_partner_and_the_reply_are_seen_on_the_other_side(
    database, live_server, browser, shots, axe
):
    from selenium.webdriver.common.by import By

    seed_caseload(database)
    seed_referral_context(database)
    driver = browser
    sign_in_with_keyboard(driver, live_server, "ann")
    shown(driver, "h1", "Referral inbox")
    card = driver.find_element(By.ID, "t-t1")
    assert "Dana Reyes" in card.text and "+1-217-555-0142" in card.text  # whom to ask
    assert DIAGNOSIS in card.text  # and why Jane was referred
    question = "Jane's phone is off. Is there another way to reach her?"
    form = card.find_element(By.CSS_SELECTOR, "form[action='/web/inbox/t1/message']")
    _open(form)
    _type_and_send(driver, form, question)
    assert "Message sent." in shown(driver, "[role=status]", "Message sent.")
    axe(driver)

    sign_out(driver)
    shown(driver, "h1", "Sign in")
    sign_in_with_keyboard(driver, live_server, "cm")
    shown(driver, "header", "Signed in as cm")
    driver.get(f"{live_server}/web/referrals/t1")
    thread = shown(driver, "section[aria-labelledby=messages-h]", question)
    assert "Harbor Housing" in thread and question in thread
    axe(driver)
    answer = "Try her sister on 555-0199; she expects your call."
    _type_and_send(driver, driver.find_element(By.CSS_SELECTOR, "form.message-form"), answer)
    assert "Message sent." in shown(driver, "[role=status]", "Message sent.")
    thread = driver.find_element(By.CSS_SELECTOR, "section[aria-labelledby=messages-h]").text
    assert thread.index(question) < thread.index(answer)
    driver.save_screenshot(str(shots / "inbox-4-referral-messages.png"))
    axe(driver)

    sign_out(driver)
    shown(driver, "h1", "Sign in")
    sign_in_with_keyboard(driver, live_server, "ann")
    card_text = shown(driver, "#t-t1", answer)  # the thread opens by itself: a reply waits
    assert "new reply" in card_text and "Care Coordination Team" in card_text
    driver.save_screenshot(str(shots / "inbox-5-reply.png"))
    axe(driver)
