"""The first user of the web pages, as the README and `serve` tell an operator to make it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from fhir_gateway.cli import app as cli
from fhir_gateway.cli.users import web_banner
from fhir_gateway.settings import get_settings
from fhir_gateway.store import repository as repo
from fhir_gateway.web._caseload import WEB_USER_SYSTEM, practitioner_ref


@pytest.fixture
def run(database_url: str, database, monkeypatch: pytest.MonkeyPatch) -> Iterator:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FHIR_GATEWAY_DATABASE_URL", database_url)
    monkeypatch.setenv("FHIR_GATEWAY_CAREPLAN_SEED", "false")
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args, input=None: runner.invoke(cli, list(args), input=input)
    get_settings.cache_clear()


def test_the_first_case_manager_is_a_practitioner_with_a_name(run, database) -> None:  # type: ignore[no-untyped-def]
    added = run(
        "users",
        "add",
        "carla",
        "--role",
        "case-manager",
        "--name",
        "Carla Mendes",
        "--password-stdin",
        input="a long enough password\n",
    )
    assert added.exit_code == 0, added.output
    res_id = practitioner_ref("carla").split("/", 1)[1]
    practitioner = database.read(repo.read, "Practitioner", res_id)
    assert practitioner is not None
    assert practitioner.content["name"] == [{"text": "Carla Mendes"}]
    assert practitioner.content["identifier"] == [{"system": WEB_USER_SYSTEM, "value": "carla"}]


def test_serve_says_where_the_web_pages_are_and_how_to_make_the_first_user() -> None:
    banner = web_banner("http://127.0.0.1:8080")
    assert "http://127.0.0.1:8080/web" in banner
    assert "fhir-gateway users add" in banner and "--role case-manager" in banner
