"""The printable safety plan in a real headless Chromium: the case manager writes the plan on the
form with the keyboard, the printout shows each step in the patient's words with the crisis line,
and, emulating print media, only the plan remains (no navigation, no sharing controls). axe-core
checks the form and the printout; screenshots go to $WEB_SCREENSHOTS."""

from __future__ import annotations

from typing import Any

import pytest
from browser_helpers import shown, sign_in_with_keyboard
from safety_plan_helpers import seed_patient

PAGE = "/web/patients/sp1/safety-plan"


@pytest.fixture
def seeded(database, app, live_server) -> str:  # type: ignore[no-untyped-def]
    seed_patient(database)
    return str(live_server)


def _type(driver: Any, field_id: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.ID, field_id)
    box.clear()
    box.send_keys(text)


def _visible(driver: Any, css: str) -> bool:
    from selenium.webdriver.common.by import By

    return any(e.is_displayed() for e in driver.find_elements(By.CSS_SELECTOR, css))


def test_the_plan_is_written_on_the_form_and_prints_alone(seeded, browser, shots, axe):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, base = browser, seeded
    sign_in_with_keyboard(driver, base, "cm")
    WebDriverWait(driver, 20).until(lambda d: "/web/login" not in d.current_url)
    driver.get(f"{base}{PAGE}/edit")
    shown(driver, "h1", "Write the safety plan of Maria Alvarez")
    axe(driver)
    _type(driver, "warning-signs-sign", "I stop answering my phone\nLying awake after 3 am")
    _type(driver, "coping-strategy", "Walk the dog along the lake")
    driver.find_element(By.NAME, "help.person.name.0").send_keys("Lucia (sister)")
    driver.find_element(By.NAME, "help.person.phone.0").send_keys("217-555-0190")
    _type(driver, "environment-step", "Lucia keeps my sleeping pills")
    _type(driver, "reasons-most-important", "My daughter Sofia")
    driver.save_screenshot(str(shots / "safety-plan-1-form.png"))
    driver.find_element(By.CSS_SELECTOR, "form.safety-form button[type=submit]").click()

    shown(driver, "[role=status]", "Safety plan saved.")
    body = driver.find_element(By.TAG_NAME, "main").text
    for words in ("I stop answering my phone", "Walk the dog along the lake", "My daughter Sofia"):
        assert words in body
    assert "988" in body and "Lucia (sister)" in body
    assert _visible(driver, "aside.family") and _visible(driver, "header.bar")
    driver.save_screenshot(str(shots / "safety-plan-2-screen.png"))
    axe(driver)
    family = driver.find_element(By.CSS_SELECTOR, "aside.family")
    driver.execute_script("arguments[0].scrollIntoView()", family)
    assert "Send to Lucia Alvarez" in family.text and "not shared" in family.text
    driver.save_screenshot(str(shots / "safety-plan-2-family.png"))

    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    assert not _visible(driver, "header.bar") and not _visible(driver, "aside.family")
    assert "My daughter Sofia" in driver.find_element(By.TAG_NAME, "main").text
    driver.save_screenshot(str(shots / "safety-plan-3-print.png"))
