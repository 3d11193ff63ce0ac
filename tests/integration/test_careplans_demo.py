"""`fhir-gateway demo` sends discharges dated today from its two hospitals (Springfield, IL and
Bengaluru) through a running server's API and prints the routed plans; every run makes new ones.
The benchmark's run() gives figures from one run."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from seeds import seed_templates
from typer.testing import CliRunner

from fhir_gateway.app import create_app
from fhir_gateway.cli import app
from fhir_gateway.context import SYSTEM
from fhir_gateway.settings import Settings, get_settings
from fhir_gateway.store.db import Database
from fhir_gateway.store.search import match_ids


def _lines(output: str, start: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.strip().startswith(start)]


def _section(output: str, label: str) -> str:
    return output.split(label, 1)[1].split("\n\n", 1)[0]


def _discharge_day(section: str) -> date:
    return date.fromisoformat(re.search(r"discharged (\d{4}-\d\d-\d\d) ", section).group(1))  # type: ignore[union-attr]


@pytest.fixture
def demo_server(database: Database, settings: Settings, serve_app):  # type: ignore[no-untyped-def]
    """A real gateway (review mode, tokens off as with `serve --insecure-dev`) under uvicorn."""
    seed_templates(database, settings)
    return serve_app(create_app(settings, database=database))


@pytest.mark.slow  # the whole demo against a live server, twice
def test_demo_sends_todays_discharges_through_the_server_and_prints_the_routed_plans(
    database: Database, demo_server: str
) -> None:
    first = CliRunner().invoke(app, ["demo", "--base-url", demo_server])
    second = CliRunner().invoke(app, ["demo", "--base-url", demo_server])
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    for output in (first.output, second.output):
        assert len(_lines(output, "Springfield, IL (demo): ADT^A03")) == 1
        assert len(_lines(output, "Bengaluru (demo): ADT^A03")) == 1
        assert all(
            line.endswith("→ AA")
            for line in _lines(output, "Springfield") + _lines(output, "Bengaluru")
        )
        assert "wait for a case manager's approval" in output  # review mode, and how to approve
    # today in each facility's zone, and the deadlines counted from it in that zone
    spring, blr = (
        _section(first.output, "Springfield, IL (demo)"),
        _section(first.output, "Bengaluru (demo)"),
    )
    today = datetime.now(ZoneInfo("America/Chicago")).date()
    assert _discharge_day(spring) in (today, today - timedelta(days=1))  # a run across midnight
    follow_up = _lines(spring, "Psychiatry follow-up")[0]
    assert "Springfield Community Mental Health Center" in follow_up
    assert f"{_discharge_day(spring) + timedelta(days=7)} 23:59 C" in follow_up  # CST or CDT
    assert "42 CFR Part 2" in _lines(spring, "Addiction treatment programme")[0]
    blr_rows = [line for line in blr.splitlines()[4:] if line.strip() and "measures" not in line]
    assert "and 8 symptom measures (PHQ-9, GAD-7) due after the discharge" in blr
    assert len(blr_rows) >= 7 and all("(Demo — invented)" in row for row in blr_rows), blr
    assert (
        f"{_discharge_day(blr) + timedelta(days=7)} 23:59 IST"
        in _lines(blr, "Psychiatry follow-up")[0]
    )
    assert "Samvada Psychotherapy Centre" in _lines(blr, "Psychotherapy intake")[0]
    assert "Kutumba Family Caregiver Group" in _lines(blr, "Family psychoeducation")[0]
    # a second run made new discharges and new plans, not duplicates
    plans = set(re.findall(r"CarePlan/[0-9a-f-]+ \(draft\)", first.output + second.output))
    assert len(plans) == 4
    stored = database.read(lambda s: match_ids(s, "CarePlan", [], caller=SYSTEM))
    assert len(stored) == 4


def test_demo_approves_plans_when_asked_with_a_clients_token(
    database: Database,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    serve_app,
) -> None:  # type: ignore[no-untyped-def]
    """Tokens on: the demo gets one as a registered admin client, as the README says."""
    from security_helpers import secure_settings

    seed_templates(database, secure_settings(database_url))
    base = serve_app(
        factory=lambda url: create_app(
            secure_settings(database_url, base_url=url), database=database
        )
    )
    monkeypatch.setenv("FHIR_GATEWAY_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    get_settings.cache_clear()
    try:
        refused = runner.invoke(app, ["demo", "--base-url", base, "--site", "bengaluru"])
        assert refused.exit_code == 1 and "wants an access token (401)" in refused.output
        assert runner.invoke(app, ["clients", "keygen", "demo-admin"]).exit_code == 0
        added = runner.invoke(
            app,
            [
                "clients",
                "add",
                "--client-id",
                "demo-admin",
                "--jwks",
                "demo-admin.jwks.json",
                "--role",
                "admin",
                "--scope",
                "system/*.cruds",
            ],
        )
        assert added.exit_code == 0, added.output
        run = runner.invoke(
            app,
            [
                "demo",
                "--base-url",
                base,
                "--client-id",
                "demo-admin",
                "--key",
                "demo-admin.private.jwk.json",
                "--site",
                "bengaluru",
                "--approve",
            ],
        )
    finally:
        get_settings.cache_clear()
    assert run.exit_code == 0, run.output
    assert "Springfield" not in run.output and re.search(
        r"CarePlan/\S+ \(active\) for Kavya Gowda", run.output
    )
    rows = _lines(run.output, "Psychiatry follow-up")
    assert "Manasa Psychiatric Follow-up Clinic" in rows[0] and " requested" in rows[0]


def test_demo_says_plainly_when_no_server_answers() -> None:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = CliRunner().invoke(app, ["demo", "--base-url", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert (
        "No FHIR gateway answers at" in result.output
        and "fhir-gateway serve --insecure-dev" in result.output
    )


def test_demo_local_says_which_database_it_writes(
    database: Database, database_url: str, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FHIR_GATEWAY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["demo", "--local", "--site", "springfield"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "writes to " in result.output and "Prairie Recovery Services" in result.output


@pytest.mark.slow  # a benchmark run
def test_bench_run_reports_both_rates(database: Database, database_url: str) -> None:
    from bench import bench_careplans

    figures = bench_careplans.run(plans=3, database_url=database_url)
    assert figures["plans"] == 3 and figures["resources_per_plan"] > 20
    assert figures["engine_plans_per_s"] > 0 and figures["baseline_plans_per_s"] > 0
