"""The conformance kit against the real gateway (whatever database the suite runs on): it passes,
and it notices when the server breaks a promise."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from urllib.parse import parse_qsl, urlencode

import pytest
from typer.testing import CliRunner

from conformance import run_kit
from conformance._report import ERROR, FAIL, SKIP
from fhir_gateway.cli import app as cli_app


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    # the kit sends a few thousand requests from one client: lift the per-client rate limit
    return settings.model_copy(update={"rate_limit_per_minute": 0})


@pytest.mark.slow  # every check of the kit against a live server
def test_the_gateway_passes_the_whole_kit(live_server, tmp_path):
    report = run_kit(live_server, jobs=4)
    assert report.ok, report.table() + "\n\n" + report.details()
    statuses = {r.id: r.status for r in report.results}
    # the kit really exercised the gateway: no core check was skipped for want of a claim
    core = [i for i in statuses if not i.startswith("capability.") or i == "capability.statement"]
    assert len(core) >= 60
    assert [i for i in core if statuses[i] == SKIP] == []
    assert sum(i.endswith(".search_params") and s != SKIP for i, s in statuses.items()) >= 40
    assert report.cleanup_failures == []
    junit = tmp_path / "kit.xml"
    report.write_junit(junit)
    suite = ET.parse(junit).getroot()
    assert int(suite.get("tests", "0")) == len(report.results)
    assert (suite.get("failures"), suite.get("errors")) == ("0", "0")


class PromiseBreaker:
    """ASGI middleware making the gateway break three promises: no ETag on answers, If-Match
    ignored, and Patient?birthdate silently ignored (while /metadata still claims it)."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            scope = dict(scope)
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"if-match"]
            query = parse_qsl(scope["query_string"].decode(), keep_blank_values=True)
            scope["query_string"] = urlencode(
                [(k, v) for k, v in query if k != "birthdate"]
            ).encode()

        async def without_etag(message):  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [(k, v) for k, v in message["headers"] if k.lower() != b"etag"],
                }
            await send(message)

        await self.app(scope, receive, without_etag)


BROKEN_SELECTION = [
    "crud.create",
    "versioning.*",
    "search.date",
    "capability.Patient.search_params",
    "errors.not_found",
]


def test_the_kit_fails_a_server_that_breaks_its_promises(app, request):
    app.add_middleware(PromiseBreaker)
    base_url = request.getfixturevalue("live_server")  # started only now, with the breaker inside
    report = run_kit(base_url, select=BROKEN_SELECTION)
    statuses = {r.id: r.status for r in report.results}
    messages = {r.id: r.message for r in report.results}
    assert not report.ok
    assert statuses["crud.create"] == FAIL and "ETag" in messages["crud.create"]
    assert statuses["versioning.if_match"] == FAIL and "412" in messages["versioning.if_match"]
    assert statuses["search.date"] == FAIL and "birthdate=" in messages["search.date"]
    assert statuses["capability.Patient.search_params"] == FAIL
    assert (
        "birthdate (date)" in messages["capability.Patient.search_params"]
        and "ignored" in messages["capability.Patient.search_params"]
    )
    assert statuses["errors.not_found"] not in (FAIL, ERROR)  # what still works still passes

    result = CliRunner().invoke(
        cli_app,
        [
            "conformance",
            "--base-url",
            base_url,
            "-k",
            "search.date",
            "--junit",
            str(request.getfixturevalue("tmp_path") / "k.xml"),
        ],
    )
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output and "search.date" in result.output
    assert "NOT CONFORMANT" in result.output


@pytest.mark.slow  # subprocesses or a live server
def test_the_cli_exits_zero_on_a_conformant_server(live_server, tmp_path):
    junit = tmp_path / "crud.xml"
    result = CliRunner().invoke(
        cli_app,
        [
            "conformance",
            "--base-url",
            live_server,
            "-k",
            "crud",
            "-k",
            "errors",
            "--junit",
            str(junit),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "CONFORMANT" in result.output and "crud 6" in result.output
    assert ET.parse(junit).getroot().get("failures") == "0"


@pytest.mark.slow  # subprocesses or a live server
def test_the_pytest_plugin_runs_one_item_per_check(live_server, tmp_path):
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "conformance.pytest_plugin",
        "--fhir-base-url",
        live_server,
        "-k",
        "crud or versioning",
        "-p",
        "no:cacheprovider",
        "-q",
        "--junitxml",
        str(tmp_path / "plugin.xml"),
    ]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "10 passed" in done.stdout
    names = {
        case.get("name") for case in ET.parse(tmp_path / "plugin.xml").getroot().iter("testcase")
    }
    assert {"crud.create", "versioning.if_match"} <= names
