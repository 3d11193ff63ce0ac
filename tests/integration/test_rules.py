"""The write rules belong to one app: two apps in one process keep their own rules and settings;
the rules are listed by hook point in the order they run (``fhir-gateway rules``, ``GET /_rules``
for admins only)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from security_helpers import bearer, get_token, register, secure_client
from typer.testing import CliRunner

from fhir_gateway.app import create_app
from fhir_gateway.cli import app as cli
from fhir_gateway.context import SYSTEM
from fhir_gateway.hooks import POINTS, WriteEvent
from fhir_gateway.services import lookup
from fhir_gateway.services.ingest import Intake
from fhir_gateway.services.resources import create
from fhir_gateway.settings import Settings
from fhir_gateway.store.db import Database
from fhir_gateway.store.repository import StoredResource


def _sud_discharge(control_id: str, mrn: str) -> bytes:
    return "\r".join(
        [
            f"MSH|^~\\&|SAMHSA|CLINIC|GW|GW|20240101120000+0000||ADT^A03^ADT_A03|{control_id}|P|2.5",
            "EVN|A03|20240101120000+0000",
            f"PID|1||{mrn}^^^HOSP^MR||DOE^JOHN||19800101|M",
            f"PV1|1|I|WARD^1^1||||||||||||||||V-{mrn}^^^HOSP^VN",
            "DG1|1||F10.20^Alcohol dependence^I10|||F|||||||||1",
        ]
    ).encode()


def _labels(database: Database, mrn: str) -> set[str]:
    with database.session(readonly=True) as session:
        [patient] = lookup.search(session, "Patient", [("identifier", mrn)])
        [condition] = lookup.search(session, "Condition", [("subject", f"Patient/{patient['id']}")])
    return {s["code"] for s in condition.get("meta", {}).get("security", [])}


@pytest.fixture
def second(database: Database, database_url: str) -> Iterator[Database]:
    """Another Database object on the same data, as a second app in the process would open."""
    other = Database(database_url, pool_size=2)
    yield other
    other.dispose()


def test_two_apps_in_one_process_keep_their_own_rules_and_settings(
    database: Database, second: Database, settings: Settings
) -> None:
    part2 = settings.model_copy(update={"part2_senders": ["SAMHSA|CLINIC"]})
    general = settings.model_copy(update={"part2_senders": ["OTHER|PROGRAM"]})
    first_app = create_app(part2, database=database)
    second_app = create_app(general, database=second)
    assert first_app.state.rules is not second_app.state.rules

    # The sender is a Part 2 program for the first app only, though the second was built later.
    assert Intake(database, part2).receive_hl7(_sud_discharge("R-1", "M-1")).code == "AA"
    assert Intake(second, general).receive_hl7(_sud_discharge("R-2", "M-2")).code == "AA"
    assert "42CFRPart2" in _labels(database, "M-1")
    assert "42CFRPart2" not in _labels(database, "M-2")

    # A rule added to the first app does not run on the second's writes.
    seen: list[str] = []

    def spy(event: WriteEvent, stored: StoredResource | None) -> None:
        seen.append(stored.res_id if stored is not None else "")

    first_app.state.rules.after_write("Organization", spy)
    via_second = second.write(create, "Organization", {"resourceType": "Organization"}, SYSTEM)
    assert seen == []
    via_first = database.write(create, "Organization", {"resourceType": "Organization"}, SYSTEM)
    assert via_first.stored is not None and via_second.stored is not None
    assert seen == [via_first.stored.res_id]


def test_the_listing_shows_each_hook_point_with_its_rules_in_order(app: Any) -> None:
    listing = app.state.rules.listing()
    assert list(listing) == list(POINTS)
    after = [(r["name"], r["resource_type"]) for r in listing["after_write"]]
    consent = [name for name, res_type in after if res_type == "Consent"]
    # the grants first: every later Consent rule's visibility check reads them
    assert consent[0] == "fhir_gateway.security._consent.refresh_grants"
    encounter = [name for name, res_type in after if res_type == "Encounter"]
    assert encounter[:2] == [
        "fhir_gateway.services.discharge._record_write",
        "fhir_gateway.careplans._rules._on_encounter",
    ]
    assert [r["name"] for r in listing["discharge"]][0] == (
        "fhir_gateway.careplans._rules._on_discharge"
    )
    checks = [r["name"] for r in listing["before_write"]]
    assert checks[:2] == [
        "fhir_gateway.security._guard.guard_write",
        "fhir_gateway.security._labels.label_write",
    ]
    assert "fhir_gateway.workflow._rules.check_task" in checks
    # a REST discharge's plan is written before the plan progress and Provenance are flushed,
    # and the notifications of all of it are numbered last
    assert [r["name"] for r in listing["before_commit"]] == [
        "fhir_gateway.services.discharge._announce_rest",
        "fhir_gateway.workflow._flush_before_commit",
        "fhir_gateway.notifications._numbering.flush_notifications",
    ]
    assert [r["name"] for r in listing["scheduled"]] == ["adherence"]


def test_the_rules_command_prints_the_listing(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("FHIR_GATEWAY_DATABASE_URL", database_url)
    runner = CliRunner()
    text = runner.invoke(cli, ["rules"])
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    points = [line.split(" ")[0] for line in lines if not line.startswith(" ")]
    assert points == list(POINTS)
    assert any(
        "fhir_gateway.careplans._rules._on_encounter" in line and line.endswith("Encounter")
        for line in lines
    )
    # a rule that takes the writes stored together in one call says so
    assert any(
        "fhir_gateway.monitors._workitems.on_tasks" in line and line.endswith("Task  (batch)")
        for line in lines
    )
    as_json = runner.invoke(cli, ["rules", "--json"])
    assert as_json.exit_code == 0
    listing = json.loads(as_json.output)
    assert {"name": "fhir_gateway.workflow._rules.check_task", "resource_type": "Task"} in listing[
        "before_write"
    ]
    assert {
        "name": "fhir_gateway.monitors._workitems.on_tasks",
        "resource_type": "Task",
        "batch": True,
    } in listing["after_write"]


def test_the_rules_endpoint_is_for_admins_only(database: Database, database_url: str) -> None:
    with secure_client(database, database_url) as client:
        assert client.get("/_rules").status_code == 401
        partner = register(database, "partner", ["system/Task.rs"], organization="Organization/p1")
        assert _get(client, partner).status_code == 403
        manager = register(database, "case-manager", ["system/*.cruds"])
        assert _get(client, manager).status_code == 403
        answer = _get(client, register(database, "admin", ["system/*.*"]))
        assert answer.status_code == 200
        assert list(answer.json()) == list(POINTS)
        assert {"name": "fhir_gateway.careplans._rules._on_discharge", "resource_type": None} in (
            answer.json()["discharge"]
        )


def _get(client: TestClient, key: Any) -> Any:
    return client.get("/_rules", headers=bearer(get_token(client, key)))
