"""`fhir-gateway demo` sends its sample discharge through the real intake and prints the plan;
the benchmark's run() gives figures from one run."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fhir_gateway.cli import app
from fhir_gateway.settings import get_settings
from fhir_gateway.store.db import Database


@pytest.mark.slow  # the whole demo, twice
def test_demo_prints_the_plan_and_is_idempotent(
    database: Database, database_url: str, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FHIR_GATEWAY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        first = CliRunner().invoke(app, ["demo"])
        second = CliRunner().invoke(app, ["demo"])
    finally:
        get_settings.cache_clear()
    assert first.exit_code == 0, first.output
    assert "AA (processed)" in first.output and "AA (duplicate)" in second.output
    assert "Alex J Rivera, discharged 2025-03-10" in first.output
    assert "First follow-up appointment attended  2025-03-17" in first.output
    row = next(
        line
        for line in first.output.splitlines()
        if line.startswith("Addiction treatment programme")
    )
    assert (
        "Prairie Recovery Services" in row
        and "2025-03-24T23:59:59-05:00" in row
        and "42 CFR Part 2" in row
    )
    plan_line = [line for line in first.output.splitlines() if line.startswith("Care plan")]
    assert plan_line == [
        line for line in second.output.splitlines() if line.startswith("Care plan")
    ]


@pytest.mark.slow  # a benchmark run
def test_bench_run_reports_both_rates(database: Database, database_url: str) -> None:
    from bench import bench_careplans

    figures = bench_careplans.run(plans=3, database_url=database_url)
    assert figures["plans"] == 3 and figures["resources_per_plan"] > 20
    assert figures["engine_plans_per_s"] > 0 and figures["baseline_plans_per_s"] > 0
