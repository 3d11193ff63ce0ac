"""What every browser test shares: Debian's Chromium driven by Selenium (installed by
``.ci/browser-setup``; Selenium never downloads a browser here), keyboard sign-in, reads that wait
for the next page, screenshots in $WEB_SCREENSHOTS, and axe-core (from npm, installed by the same
script into ``tests/browser/node_modules``) run inside the page at WCAG 2.1 AA."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web_helpers import web_settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
# The rule tags of WCAG 2.1 level A and AA (axe-core's names for them).
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    missing = not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER))
    skip = pytest.mark.skipif(
        missing,
        reason="browser tests need Debian's chromium and chromium-driver: run .ci/browser-setup",
    )
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.slow)
            item.add_marker(skip)


@pytest.fixture
def settings(database_url):  # type: ignore[no-untyped-def]  # the conftest's app, with sign-in on
    return web_settings(database_url)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
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


@pytest.fixture
def shots() -> Path:
    folder = Path(os.environ.get("WEB_SCREENSHOTS") or tempfile.mkdtemp(prefix="web-shots-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def axe() -> Any:
    """``axe(driver)`` runs axe-core on the page at WCAG 2.1 AA and fails the test with every
    violation (rule, impact, the offending elements) when there is one."""
    if not AXE.exists():
        pytest.skip("axe-core is missing: run .ci/browser-setup (npm ci in tests/browser)")
    source = AXE.read_text(encoding="utf-8")

    def check(driver: Any) -> None:
        driver.execute_script(source)
        driver.set_script_timeout(30)
        result = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}})"
            ".then(r => done(r.violations)).catch(e => done([{id: 'axe-error', help: String(e)}]));",
            WCAG_21_AA,
        )
        problems = [
            {
                "rule": v.get("id"),
                "impact": v.get("impact"),
                "help": v.get("help"),
                "nodes": [n.get("target") for n in v.get("nodes", [])][:5],
            }
            for v in result
        ]
        assert not problems, f"axe-core on {driver.current_url}:\n" + json.dumps(problems, indent=1)

    return check
