"""Steps every browser test takes: keyboard sign-in, reads that wait for the next page, sign-out."""

from __future__ import annotations

import time
from typing import Any

from web_helpers import PASSWORD


def sign_in_with_keyboard(driver: Any, base: str, username: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(f"{base}/web/login")
    driver.find_element(By.CSS_SELECTOR, "label[for=username]").click()  # focuses its field
    driver.switch_to.active_element.send_keys(username, Keys.TAB, PASSWORD, Keys.ENTER)


def shown(driver: Any, css: str, expected: str) -> str:
    """The text of ``css`` once it contains ``expected``: a click or Enter submits a form without
    waiting for the next page, so read the new page only when it is there (else the old one's)."""
    from selenium.common.exceptions import TimeoutException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def text() -> str:
        return str(driver.find_element(By.CSS_SELECTOR, css).text)

    def settled(_: Any) -> bool:
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


def sign_out(driver: Any) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, "//button[normalize-space()='Sign out']").click()
