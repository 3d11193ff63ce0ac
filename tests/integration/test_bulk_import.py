"""The bulk write path (store.bulk, `fhir-gateway import`): what it writes is what a create through
the API writes: readable, version 1 in history, the same search-index rows, found by the same
searches. A bad line stops the import, names itself and leaves nothing behind."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from fhir_gateway import clock
from fhir_gateway.cli import app as cli
from fhir_gateway.store import bulk
from fhir_gateway.store.tables import INDEX_TABLES, resource_versions, resources

FHIR = {"Content-Type": "application/fhir+json"}
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _group(prefix: str) -> list[dict[str, Any]]:
    """A patient's discharge, care plan and referral, all ids and references under ``prefix``."""
    p = prefix
    return [
        {"resourceType": "Organization", "id": f"{p}org", "name": "Hope Housing", "active": True},
        {
            "resourceType": "Patient",
            "id": f"{p}pat",
            "identifier": [{"system": "urn:oid:1.2.3", "value": f"{p}MRN1"}],
            "name": [{"family": "Müller", "given": ["Ana"]}],
            "gender": "female",
            "birthDate": "1980-02-03",
            "address": [{"line": ["1 Main St"], "city": "Springfield", "postalCode": "62701"}],
        },
        {
            "resourceType": "Goal",
            "id": f"{p}goal",
            "lifecycleStatus": "active",
            "description": {"text": "Stable housing"},
            "subject": {"reference": f"Patient/{p}pat"},
        },
        {
            "resourceType": "CarePlan",
            "id": f"{p}plan",
            "status": "active",
            "intent": "plan",
            "subject": {"reference": f"Patient/{p}pat"},
            "goal": [{"reference": f"Goal/{p}goal"}],
            "period": {"start": "2024-04-30"},
        },
        {
            "resourceType": "Task",
            "id": f"{p}task",
            "status": "requested",
            "intent": "order",
            "code": {
                "coding": [
                    {"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}
                ]
            },
            "for": {"reference": f"Patient/{p}pat"},
            "owner": {"reference": f"Organization/{p}org"},
            "authoredOn": "2024-04-30T10:00:00Z",
            "restriction": {"period": {"end": "2024-05-14"}},
        },
    ]


def _index_of(session: Any, res_type: str, prefix: str, res_id: str) -> Counter[tuple[Any, ...]]:
    """The index rows of one resource, with ``prefix`` taken out of its values (ids, references)."""
    rows: Counter[tuple[Any, ...]] = Counter()
    for kind, table in INDEX_TABLES.items():
        cols = [c for c in table.c if c.name not in ("row_id", "res_id")]
        query = select(*cols).where(table.c.res_type == res_type, table.c.res_id == prefix + res_id)
        for row in session.execute(query):
            rows[(kind, *(v.replace(prefix, "") if isinstance(v, str) else v for v in row))] += 1
    return rows


def _search_ids(client: Any, query: str, prefix: str) -> list[str]:
    response = client.get(f"/{query}")
    assert response.status_code == 200, response.text
    return sorted(
        f"{e['search']['mode']} {e['resource']['resourceType']}/{e['resource']['id'].removeprefix(prefix)}"
        for e in response.json().get("entry", [])
    )


def test_bulk_rows_are_those_of_a_create_through_the_api(client, database):  # type: ignore[no-untyped-def]
    clock.set_clock(lambda: T0)
    for resource in _group("api-"):
        created = client.put(
            f"/{resource['resourceType']}/{resource['id']}", json=resource, headers=FHIR
        )
        assert created.status_code == 201, created.text
    with database.session() as session:
        result = bulk.load(session, _group("bulk-"))
    assert result.total == 5 and result.by_type["Task"] == 1 and result.index_rows > 20

    with database.session(readonly=True) as session:
        for resource in _group(""):
            res_type, res_id = resource["resourceType"], resource["id"]
            mine = _index_of(session, res_type, "bulk-", res_id)
            assert mine and mine == _index_of(session, res_type, "api-", res_id), res_type
            [version] = session.execute(
                select(resource_versions).where(
                    resource_versions.c.res_type == res_type,
                    resource_versions.c.res_id == f"bulk-{res_id}",
                )
            ).all()
            assert (version.version_id, version.deleted, version.method) == (1, False, "PUT")

    read = client.get("/Task/bulk-task").json()
    assert (
        read["meta"]["versionId"] == "1"
        and read["meta"]["lastUpdated"] == "2024-05-01T12:00:00.000000Z"
    )
    assert read["owner"] == {"reference": "Organization/bulk-org"}
    history = client.get("/Task/bulk-task/_history").json()
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["1"]

    queries = [
        "Task?owner=Organization/{p}org&status=requested",
        "Task?owner={p}org&_lastUpdated=gt2024-04-30",
        "CarePlan?patient={p}pat&_include=CarePlan:goal",
        "Patient?family=muller&identifier=urn:oid:1.2.3|{p}MRN1",
        "Patient?address-city=springfield&_id={p}pat&_revinclude=Task:patient",
    ]
    for query in queries:
        found = _search_ids(client, query.format(p="bulk-"), "bulk-")
        assert found and found == _search_ids(client, query.format(p="api-"), "api-"), query


def test_ids_are_assigned_and_last_updated_kept_on_request(client, database):  # type: ignore[no-untyped-def]
    clock.set_clock(lambda: T0)
    old = {
        "resourceType": "Patient",
        "meta": {"lastUpdated": "2024-01-02T03:04:05Z"},
        "name": [{"family": "Old"}],
    }
    future = {
        "resourceType": "Patient",
        "meta": {"lastUpdated": "2030-01-01T00:00:00Z"},
        "name": [{"family": "Late"}],
    }
    with database.session() as session:
        bulk.load(
            session,
            [old, future, {"resourceType": "Patient", "name": [{"family": "Now"}]}],
            keep_last_updated=True,
        )
    times = {
        e["resource"]["name"][0]["family"]: e["resource"]["meta"]["lastUpdated"]
        for e in client.get("/Patient").json()["entry"]
    }
    assert times == {
        "Old": "2024-01-02T03:04:05.000000Z",
        "Late": "2024-05-01T12:00:00.000000Z",
        "Now": "2024-05-01T12:00:00.000000Z",
    }
    recent = client.get("/Patient?_lastUpdated=gt2024-03-01").json()
    assert sorted(e["resource"]["name"][0]["family"] for e in recent["entry"]) == ["Late", "Now"]
    with database.session() as session:  # new ids were assigned, created as a POST
        methods = session.execute(select(resource_versions.c.method)).scalars().all()
    assert methods == ["POST"] * 3


def test_chunks_on_both_databases_and_duplicates_are_named(database):  # type: ignore[no-untyped-def]
    patients = [{"resourceType": "Patient", "id": f"p{n}", "gender": "other"} for n in range(25)]
    with database.session() as session:
        assert bulk.load(session, patients, chunk=10).total == 25
    with pytest.raises(bulk.BulkError, match=r"resource 2: Patient/p3 already exists"):
        with database.session() as session:
            bulk.load(
                session,
                [{"resourceType": "Patient", "id": "new"}, {"resourceType": "Patient", "id": "p3"}],
            )
    with pytest.raises(bulk.BulkError, match=r"resource 3: Patient/x appears twice"):
        with database.session() as session:
            bulk.load(session, [{"resourceType": "Patient", "id": i} for i in ("x", "y", "x")])
    with database.session() as session:
        assert session.execute(select(func.count()).select_from(resources)).scalar() == 25


def _write(path: Path, lines: list[Any]) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


@pytest.fixture
def run_cli(database_url, monkeypatch):  # type: ignore[no-untyped-def]
    from fhir_gateway.settings import get_settings

    monkeypatch.setenv("FHIR_GATEWAY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield lambda *args: CliRunner().invoke(cli, ["import", "--no-migrate", *map(str, args)])
    get_settings.cache_clear()


def _count(database: Any) -> int:
    with database.session(readonly=True) as session:
        return int(session.execute(select(func.count()).select_from(resources)).scalar_one())


def test_cli_imports_ndjson_files_and_prints_counts(database, run_cli, tmp_path):  # type: ignore[no-untyped-def]
    first = _write(tmp_path / "a.ndjson", _group("a-")[:3])
    second = _write(tmp_path / "b.ndjson", ["", *_group("a-")[3:], ""])
    result = run_cli(first, second)
    assert result.exit_code == 0, result.output
    assert "imported 5 resources" in result.output and "Task" in result.output
    assert _count(database) == 5


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('{"resourceType": "Patient", "id": "p9"', "not valid JSON"),
        ({"resourceType": "Patient", "id": "p9", "gender": "bogus"}, "gender"),
        ({"resourceType": "Nonsense", "id": "p9"}, "resourceType"),
        ({"resourceType": "Patient", "id": "a-pat"}, "Patient/a-pat appears twice"),
    ],
)
def test_cli_names_the_bad_line_and_imports_nothing(  # type: ignore[no-untyped-def]
    database, run_cli, tmp_path, bad, message
):
    good = _write(tmp_path / "good.ndjson", _group("a-"))
    broken = _write(tmp_path / "broken.ndjson", [{"resourceType": "Patient", "id": "p8"}, "", bad])
    result = run_cli(good, broken)
    assert result.exit_code == 2
    assert f"{broken}:3: " in result.output and message in result.output, result.output
    assert "nothing was imported" in result.output
    assert _count(database) == 0
