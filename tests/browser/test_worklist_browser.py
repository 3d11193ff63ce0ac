"""The case manager's pages in a real headless Chromium, with the keyboard alone: approve a plan
after changing a partner and dropping an activity; give an unassigned referral a partner from
the worklist; find a patient; `/` leads a browser to the web pages. axe-core checks every page
(WCAG 2.1 AA). Screenshots go to $WEB_SCREENSHOTS (default: a temporary directory)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import shown, sign_in_with_keyboard
from careplan_helpers import ZONE, adt
from seeds import seed_templates
from web_helpers import web_settings
from worklist_helpers import (
    SPANISH,
    bulk_load,
    discharge,
    patient,
    seed_users,
    speak_spanish,
)

from fhir_gateway.context import SYSTEM
from fhir_gateway.services import resources
from fhir_gateway.store import repository as repo
from fhir_gateway.store.search import match_ids

SAFETY = "Safety and crisis plan review"
PEER = "Peer support group"


@pytest.fixture
def settings(database_url):  # type: ignore[no-untyped-def]  # review mode, St Mary's zone
    return web_settings(
        database_url,
        careplan_mode="review",
        sender_zones={"STMARYS": ZONE},
        default_sender_zone=ZONE,
    )


def _ready(app: Any, database: Any, settings: Any, **discharge: Any) -> dict[str, Any]:
    """Templates, directory and users stored; one discharge sent; its draft plan."""
    seed_templates(database, settings)
    seed_users(database)
    answer = app.state.intake.receive_hl7(
        adt(discharged="20991110140000", **discharge), channel="http"
    )
    assert answer.code == "AA", answer.body
    with database.session(readonly=True) as session:
        ids = match_ids(session, "CarePlan", [("status", "draft")], caller=SYSTEM)
        return repo.read(session, "CarePlan", ids[0]).content  # type: ignore[union-attr]


def _tasks(database: Any, plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    with database.session(readonly=True) as session:
        current = repo.read(session, "CarePlan", plan["id"]).content  # type: ignore[union-attr]
        out = {}
        for activity in current["activity"]:
            ref = activity["reference"]["reference"]
            if not ref.startswith("ServiceRequest/"):
                continue  # a symptom measurement Task of the plan, not a referral
            request = repo.read(session, "ServiceRequest", ref.split("/")[1]).content  # type: ignore[union-attr]
            for task_id in match_ids(session, "Task", [("focus", ref)], caller=SYSTEM):
                out[request["code"]["text"]] = repo.read(session, "Task", task_id).content  # type: ignore[union-attr]
        return current | {"tasks": out}


def _press(element: Any) -> None:
    """Activate a link or button as a keyboard user does: Enter."""
    from selenium.webdriver.common.keys import Keys

    element.send_keys(Keys.ENTER)


def _article(driver: Any, service: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(
        By.XPATH, f"//article[h3[starts-with(normalize-space(), '{service}')]]"
    )


def _open(article: Any) -> None:
    from selenium.webdriver.common.by import By

    _press(article.find_element(By.TAG_NAME, "summary"))  # a <details>: Enter opens it


def _shot(driver: Any, shots: Path, name: str) -> None:
    driver.save_screenshot(str(shots / name))


def test_a_case_manager_approves_a_plan_after_changing_a_partner_and_dropping_an_activity(
    app, database, settings, live_server, browser, shots, axe
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    plan = _ready(app, database, settings)
    driver = browser
    sign_in_with_keyboard(driver, live_server, "carla")
    assert shown(driver, "h1", "Worklist") == "Worklist"
    _shot(driver, shots, "w1-worklist.png")
    axe(driver)

    _press(driver.find_element(By.PARTIAL_LINK_TEXT, "Review the plan"))
    assert "for Jane Q Doe" in shown(driver, "h1", "Jane Q Doe")
    _shot(driver, shots, "w2-plan.png")
    axe(driver)

    safety = _article(driver, SAFETY)
    _open(safety)
    choice = safety.find_element(
        By.XPATH, ".//label[starts-with(normalize-space(), 'Sangamon County Crisis Response')]"
    )
    why = safety.find_element(By.ID, choice.get_attribute("for").replace("p-", "w-")).text
    assert why.startswith("Eligible: offers this service; covers the patient's area")
    safety.find_element(By.ID, choice.get_attribute("for")).send_keys(Keys.SPACE)
    _shot(driver, shots, "w3-partner-choice.png")
    axe(driver)  # the open form too
    _press(
        safety.find_element(By.XPATH, ".//button[starts-with(normalize-space(), 'Change partner')]")
    )
    assert "Partner changed." in shown(driver, "[role=status]", "Partner changed.")
    assert "Partner: Sangamon County Crisis Response" in _article(driver, SAFETY).text

    peer = _article(driver, PEER)
    _open(peer)
    peer.find_element(By.XPATH, ".//input[starts-with(@id, 'drop-')]").send_keys(
        "Already in a group", Keys.ENTER
    )
    assert "Activity dropped" in shown(driver, "[role=status]", "Activity dropped")
    assert "Dropped at review by Carla Mendes: Already in a group" in _article(driver, PEER).text
    _shot(driver, shots, "w4-dropped.png")
    axe(driver)

    _press(driver.find_element(By.XPATH, "//button[normalize-space()='Approve plan']"))
    assert "Plan approved." in shown(driver, "[role=status]", "Plan approved.")
    _shot(driver, shots, "w5-approved.png")
    axe(driver)

    stored = _tasks(database, plan)
    assert stored["status"] == "active"
    assert stored["tasks"][SAFETY]["status"] == "requested"
    assert stored["tasks"][SAFETY]["owner"]["reference"] == "Organization/sangamon-crisis"
    assert stored["tasks"][PEER]["status"] == "cancelled"


def test_a_case_manager_gives_an_unassigned_referral_a_partner_from_the_worklist(
    app, database, settings, live_server, browser, shots, axe
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from fhir_gateway.security import TokenCaller

    plan = _ready(app, database, settings, diagnoses=SPANISH, language="spa^Spanish^ISO6392")
    manager = TokenCaller(client_id="cm", role="case-manager", scopes=frozenset({"system/*.cruds"}))
    with database.session() as session:  # approved through the API's path
        resources.update(session, "CarePlan", plan["id"], {**plan, "status": "active"}, manager)
    speak_spanish(database)  # then a partner starts working in Spanish

    driver = browser
    sign_in_with_keyboard(driver, live_server, "carla")
    row = shown(driver, "tr.kind-unassigned", "Vocational training")
    assert "speaks the patient's language (es)" in row
    _shot(driver, shots, "u1-worklist-unassigned.png")
    axe(driver)
    link = driver.find_element(
        By.XPATH,
        "//tr[contains(., 'Vocational training')]//a[starts-with(normalize-space(), 'Choose a partner')]",
    )
    _press(link)
    assert shown(driver, "h1", "Vocational training") == "Partner for Vocational training"
    assert "Why it has none:" in driver.find_element(By.CSS_SELECTOR, "main").text
    radio = driver.find_element(By.XPATH, "//input[@value='Organization/capital-ips']")
    radio.send_keys(Keys.SPACE)
    _shot(driver, shots, "u2-choose-partner.png")
    axe(driver)
    _press(driver.find_element(By.XPATH, "//button[normalize-space()='Send to this partner']"))
    assert "has a partner now" in shown(driver, "[role=status]", "has a partner now")
    assert "Vocational training" not in driver.find_element(By.CSS_SELECTOR, "table.worklist").text
    _shot(driver, shots, "u3-assigned.png")
    axe(driver)
    task = _tasks(database, plan)["tasks"]["Vocational training"]
    assert (
        task["status"] == "requested" and task["owner"]["reference"] == "Organization/capital-ips"
    )

    driver.get(f"{live_server}/web/caseloads")  # the caseload overview, from the menu
    assert shown(driver, "h1", "Caseloads") == "Caseloads"
    _shot(driver, shots, "u4-caseloads.png")
    axe(driver)


def test_a_case_manager_finds_a_patient_by_name_mrn_or_birth_date(
    app, database, settings, live_server, browser, shots, axe
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    seed_templates(database, settings)
    seed_users(database)
    bulk_load(
        database,
        [
            patient("a", "Jane", "Doe", "1980-02-03", "MRN-4711"),
            patient("b", "John", "Doe", "1975-06-30", "MRN-0815"),
            patient("c", "Ann", "Smith", "1980-02-03", "MRN-9999"),
            *discharge("b", (datetime.now(UTC) - timedelta(days=12)).isoformat()),
        ],
    )
    driver = browser
    sign_in_with_keyboard(driver, live_server, "carla")
    shown(driver, "h1", "Worklist")
    row = shown(driver, "tr.kind-follow-up-missed", "John Doe")  # no visit 12 days after discharge
    assert "7-day follow-up missed" in row and "Arrange a follow-up visit with the patient" in row
    _shot(driver, shots, "s0-worklist-follow-up-missed.png")
    axe(driver)
    driver.find_element(By.ID, "q").send_keys("Doe", Keys.ENTER)
    found = shown(driver, "section[aria-labelledby=find-h]", "found")
    assert (
        "2 patients found by name or MRN" in found and "Jane Doe" in found and "John Doe" in found
    )
    _shot(driver, shots, "s1-search.png")
    axe(driver)
    box = driver.find_element(By.ID, "q")
    box.clear()
    box.send_keys("3 Feb 1980", Keys.ENTER)
    shown(driver, "section[aria-labelledby=find-h]", "by birth date")
    found = driver.find_element(By.CSS_SELECTOR, "table[aria-labelledby=found-h]").text
    assert "Jane Doe" in found and "Ann Smith" in found and "John" not in found
    box = driver.find_element(By.ID, "q")
    box.clear()
    box.send_keys("MRN-0815", Keys.ENTER)
    found = shown(driver, "table[aria-labelledby=found-h]", "MRN-0815")
    assert "John Doe" in found and "Jane" not in found
    _press(driver.find_element(By.LINK_TEXT, "John Doe"))
    assert "John Doe" in shown(driver, "h1", "John Doe")
    follow_up = driver.find_element(By.CSS_SELECTOR, "dl.follow-up").text
    assert "missed (the window closed" in follow_up and "days left" in follow_up
    _shot(driver, shots, "s2-patient-follow-up.png")
    axe(driver)


def test_a_browser_asking_for_the_server_lands_on_the_web_pages(live_server, browser, shots, axe):
    browser.get(f"{live_server}/")
    assert shown(browser, "h1", "Sign in") == "Sign in"
    assert browser.current_url == f"{live_server}/web/login"
    _shot(browser, shots, "r1-root.png")
    axe(browser)
