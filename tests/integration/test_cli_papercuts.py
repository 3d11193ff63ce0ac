"""The CLI as a new user meets it: each papercut found by trying it, fixed and held here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from intake_helpers import adt
from typer.testing import CliRunner

from fhir_gateway.cli import app as cli
from fhir_gateway.settings import get_settings

FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def run(database_url: str, database, monkeypatch: pytest.MonkeyPatch) -> Iterator:  # type: ignore[no-untyped-def]
    """``run(*args, input=None)``: the fhir-gateway command on the test database."""
    monkeypatch.setenv("FHIR_GATEWAY_DATABASE_URL", database_url)
    monkeypatch.setenv("FHIR_GATEWAY_CAREPLAN_SEED", "false")
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args, input=None: runner.invoke(cli, list(args), input=input)
    get_settings.cache_clear()


def _task_with_history(client: TestClient) -> str:
    patient = client.post("/Patient", json={"resourceType": "Patient"}, headers=FHIR).json()["id"]
    task = {
        "resourceType": "Task",
        "status": "draft",
        "intent": "order",
        "for": {"reference": f"Patient/{patient}"},
    }
    created = client.post("/Task", json=task, headers=FHIR)
    assert created.status_code == 201, created.text
    task = created.json()
    updated = client.put(f"/Task/{task['id']}", json={**task, "status": "requested"}, headers=FHIR)
    assert updated.status_code == 200, updated.text
    return str(task["id"])


def test_referral_times_accepts_task_slash_id_and_bare_id(client: TestClient, run) -> None:  # type: ignore[no-untyped-def]
    task_id = _task_with_history(client)
    bare = run("referral", "times", task_id)
    typed = run("referral", "times", f"Task/{task_id}")
    assert bare.exit_code == 0, bare.output
    assert typed.exit_code == 0, typed.output
    states = [line.split()[:2] for line in typed.stdout.splitlines() if line.startswith("v")]
    assert states == [line.split()[:2] for line in bare.stdout.splitlines() if line.startswith("v")]
    assert states == [["v1", "draft"], ["v2", "requested"]]
    wrong = run("referral", "times", f"Patient/{task_id}")
    assert wrong.exit_code == 2 and "is not a Task" in " ".join(
        wrong.output.replace("│", " ").split()
    )


def test_inbox_list_has_headings_and_refuses_an_unknown_status(client: TestClient, run) -> None:  # type: ignore[no-untyped-def]
    client.post("/hl7v2", content=adt("A03", "CLI-1"), headers={"Content-Type": "text/plain"})
    listed = run("inbox", "list")
    assert listed.exit_code == 0, listed.output
    heading, row = listed.stdout.splitlines()[:2]
    assert heading.split()[:4] == ["ID", "STATUS", "ANSWER", "CHAN"] and "CLI-1" in row
    unknown = run("inbox", "list", "--status", "failled")
    assert unknown.exit_code == 2
    said = " ".join(unknown.output.replace("│", " ").split())  # rich draws the error in a box
    assert "'failled' is not one of received, processed, duplicate, failed" in said


def test_convert_dir_names_the_file_of_each_warning(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "clean.hl7").write_bytes(adt("A03", "C-1"))
    (tmp_path / "zseg.hl7").write_bytes(adt("A03", "C-2", extra="ZPI|1|custom"))
    result = run("convert", str(tmp_path), "--compact")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings and all(f"{tmp_path / 'zseg.hl7'}: " in line for line in warnings)
    assert "Z-segment ignored" in warnings[0]
    assert "2 bundles from 2 files; 0 failed; 1 warnings" in result.stderr
    assert len(result.stdout.splitlines()) == 2  # stdout holds the bundles only


def test_users_add_refuses_an_organization_that_does_not_exist(client: TestClient, run) -> None:  # type: ignore[no-untyped-def]
    missing = run(
        "users",
        "add",
        "ana",
        "--role",
        "partner",
        "--organization",
        "Organization/nowhere",
        "--password-stdin",
        input="a long enough password\n",
    )
    assert missing.exit_code == 2
    assert "Organization/nowhere does not exist" in missing.output
    client.put(
        "/Organization/somewhere",
        json={"resourceType": "Organization", "id": "somewhere", "name": "CMHC"},
        headers=FHIR,
    )
    added = run(
        "users",
        "add",
        "ana",
        "--role",
        "partner",
        "--organization",
        "Organization/somewhere",
        "--password-stdin",
        input="a long enough password\n",
    )
    assert added.exit_code == 0, added.output
    assert "organization Organization/somewhere" in added.stdout


def test_monitors_run_says_it_loops_unless_once(run) -> None:  # type: ignore[no-untyped-def]
    helped = " ".join(run("monitors", "run", "--help").stdout.split())
    assert "Without --once this LOOPS until stopped" in helped
    once = run("monitors", "run", "--once")
    assert once.exit_code == 0, once.output
    assert '"tasks_checked"' in once.stdout  # the summary, then it exits


def test_reindex_and_replay_end_with_a_summary(client: TestClient, run) -> None:  # type: ignore[no-untyped-def]
    client.post("/Patient", json={"resourceType": "Patient"}, headers=FHIR)
    reindexed = run("reindex", "--type", "Patient")
    assert reindexed.exit_code == 0, reindexed.output
    assert reindexed.stdout.startswith("reindexed 1 resources in ")
    broken = adt("A03", "CLI-F").replace(b"PID|1||MRN1^^^HOSP^MR", b"PID|1||")
    client.post("/hl7v2", content=broken, headers={"Content-Type": "text/plain"})
    replayed = run("inbox", "replay", "--failed")
    assert "replayed 1 failed message(s): 0 applied, 1 still failed" in replayed.stderr
    assert replayed.exit_code == 1


def test_import_ends_with_a_summary(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    ndjson = tmp_path / "patients.ndjson"
    ndjson.write_text(
        '{"resourceType": "Patient", "id": "p1"}\n{"resourceType": "Patient", "id": "p2"}\n'
    )
    result = run("import", str(ndjson))
    assert result.exit_code == 0, result.output
    assert "imported 2 resources" in result.stdout


def test_database_commands_tell_a_refusal_the_same_way(client: TestClient, run) -> None:  # type: ignore[no-untyped-def]
    """One wrapper: "error: …" on stderr, exit 1 for what does not exist, 2 for what is refused."""
    refused = run("clients", "add", "--role", "janitor", "--scope", "system/Task.rs")
    missing = [
        run("clients", "remove", "nobody"),
        run("users", "remove", "nobody"),
        run("inbox", "show", "424242"),
        run("inbox", "replay", "424242"),
    ]
    assert refused.exit_code == 2, refused.output
    assert refused.stderr.startswith("error: role must be one of")
    for result in missing:
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("error: "), result.stderr
