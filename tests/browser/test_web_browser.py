"""The web pages in a real headless Chromium (Debian's ``chromium`` + ``chromedriver``, installed by
``.ci/browser-setup``; Selenium never downloads a browser here): a partner signs in with the
keyboard and takes a referral through accept → in progress → complete; each page refuses the
other role. Screenshots go to $WEB_SCREENSHOTS (default: a temporary directory)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from web_helpers import PASSWORD, seed_caseload, web_settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
        reason="browser tests need Debian's chromium and chromium-driver: run .ci/browser-setup",
    ),
]


@pytest.fixture
def settings(database_url):  # type: ignore[no-untyped-def]  # the conftest's app, with sign-in on
    return web_settings(database_url)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="browser tests need the selenium package"
    )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)  # waits for elements, never asserts on time
    try:
        yield driver
    finally:
        driver.quit()


def _shots() -> Path:
    folder = Path(os.environ.get("WEB_SCREENSHOTS") or tempfile.mkdtemp(prefix="web-shots-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _sign_in_with_keyboard(driver, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(f"{base}/web/login")
    driver.find_element(
        By.CSS_SELECTOR, "label[for=username]"
    ).click()  # the label focuses its field
    driver.switch_to.active_element.send_keys(username, Keys.TAB, PASSWORD, Keys.ENTER)


def _shown(driver, css: str, expected: str) -> str:  # type: ignore[no-untyped-def]
    """The text of ``css`` once it contains ``expected``: a click or Enter submits a form without
    waiting for the next page, so read the new page only when it is there (else the old one's)."""
    from selenium.common.exceptions import TimeoutException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def text() -> str:
        return driver.find_element(By.CSS_SELECTOR, css).text

    def settled(_) -> bool:  # type: ignore[no-untyped-def]
        # While the next page replaces this one, ChromeDriver may answer a read of the old node
        # with "no such element", "stale element" or "Node … does not belong to the document".
        try:
            return expected in text()
        except WebDriverException:
            return False

    try:
        WebDriverWait(driver, 20).until(settled)
    except TimeoutException:
        pass  # the assertion that follows shows what the page says instead
    for _ in range(20):  # bounded: the page settles within a few reads
        try:
            return text()
        except WebDriverException:
            time.sleep(0.1)
    return text()


def _sign_out(driver) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, "//button[normalize-space()='Sign out']").click()


def _form(driver, task: str, action: str):  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f"form[action='/web/inbox/{task}/{action}']")


def test_partner_takes_a_referral_through_to_completion_and_pages_refuse_the_other_role(
    database, live_server, browser
):
    from selenium.webdriver.common.by import By

    seed_caseload(database)
    shots = _shots()
    driver = browser
    _sign_in_with_keyboard(driver, live_server, "ann")
    assert _shown(driver, "h1", "Referral inbox") == "Referral inbox"
    assert "Jane Doe" in driver.page_source and "MRN-SECRET-42" not in driver.page_source
    driver.save_screenshot(str(shots / "1-inbox.png"))

    _form(driver, "t1", "accept").find_element(By.TAG_NAME, "button").click()
    assert "Referral accepted." in _shown(driver, "[role=status]", "Referral accepted.")
    _form(driver, "t1", "start").find_element(By.TAG_NAME, "button").click()
    assert "Referral marked in progress." in _shown(
        driver, "[role=status]", "Referral marked in progress."
    )
    complete = _form(driver, "t1", "complete")
    complete.find_element(By.TAG_NAME, "textarea").send_keys("Housing found; moved in on day 9")
    driver.save_screenshot(str(shots / "2-in-progress.png"))
    complete.find_element(By.TAG_NAME, "button").click()
    assert "Referral completed." in _shown(driver, "[role=status]", "Referral completed.")
    closed = driver.find_element(By.CSS_SELECTOR, "section[aria-labelledby=closed-h]").text
    assert "completed" in closed and "Housing found; moved in on day 9" in closed

    driver.get(f"{live_server}/web/dashboard")  # a partner may not see the caseload
    assert driver.find_element(By.TAG_NAME, "h1").text == "Not allowed"
    assert "Jane" not in driver.page_source
    driver.save_screenshot(str(shots / "3-refused.png"))

    driver.get(f"{live_server}/web/inbox")
    _sign_out(driver)
    _shown(driver, "h1", "Sign in")
    _sign_in_with_keyboard(driver, live_server, "cm")
    assert _shown(driver, "h1", "Caseload dashboard") == "Caseload dashboard"
    plans = driver.find_element(By.CSS_SELECTOR, "section[aria-labelledby=plans-h]").text
    assert "Aftercare plan" in plans and "completed" in plans
    driver.save_screenshot(str(shots / "4-dashboard.png"))
    driver.get(f"{live_server}/web/inbox")  # and a case manager has no partner inbox
    assert driver.find_element(By.TAG_NAME, "h1").text == "Not allowed"
    driver.get(f"{live_server}/web/patients/p1")
    timeline = driver.find_element(By.CSS_SELECTOR, "ol.timeline").text
    assert (
        "Referral accepted" in timeline
        and "Referral in-progress" in timeline
        and "Referral completed" in timeline
    )
    driver.save_screenshot(str(shots / "5-patient.png"))
