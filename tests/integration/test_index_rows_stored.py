"""The index rows a write stores are the rows ``extract`` gives, whatever the values hold: on
PostgreSQL they travel as one JSON array per table (json_to_recordset), so quotes, backslashes,
non-ASCII text, extreme dates and numbers must come out as they went in; on SQLite as
executemany rows. Both a single write and the bulk paths (create_many, update_many)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from sqlalchemy import select

from fhir_gateway.search.extract import TABLE_COLUMNS, extract
from fhir_gateway.store import index, repository
from fhir_gateway.store.tables import INDEX_TABLES

AWKWARD = 'say "hi" \\ back\\slash, tab\t, é, 東京, emoji 🙂, {"json": [1]}'


def _observation(res_id: str, value: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": res_id,
        "status": "final",
        "code": {"coding": [{"system": "urn:x:" + AWKWARD, "code": AWKWARD}], "text": AWKWARD},
        "subject": {"reference": "Patient/p-1", "display": AWKWARD},
        "effectivePeriod": {"start": "0001-01-01T00:00:00Z"},  # no end: open to the last instant
        "issued": "2024-02-29T23:59:59.123456+05:30",
        "valueQuantity": {"value": value, "unit": AWKWARD, "system": "http://unitsofmeasure.org"},
    }


def _patient(res_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": res_id,
        "name": [{"family": AWKWARD, "given": ["Ünïcødé", "O'Brien"]}],
        "birthDate": "9999-12-31",
        "identifier": [{"system": "urn:oid:1.2.3", "value": AWKWARD}],
    }


def _stored_rows(session: Any, res_type: str, res_id: str) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    for kind, table in INDEX_TABLES.items():
        columns = [table.c[c] for c in TABLE_COLUMNS[kind]]
        rows = session.execute(
            select(*columns).where(table.c.res_type == res_type, table.c.res_id == res_id)
        ).all()
        if rows:
            out[kind] = sorted((tuple(row) for row in rows), key=repr)
    return out


def _extracted_rows(doc: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
    return {
        kind: sorted((tuple(row[c] for c in TABLE_COLUMNS[kind]) for row in rows), key=repr)
        for kind, rows in extract(doc).items()
        if rows
    }


DOCS = [_patient("p-1"), _observation("o-1", 1e-300), _observation("o-2", 123456789.123456789)]


@pytest.mark.parametrize("path", ["single", "bulk"])
def test_stored_index_rows_are_the_extracted_ones(database, path: str) -> None:  # type: ignore[no-untyped-def]
    with database.session() as session:
        if path == "single":
            for doc in DOCS:
                repository.create_resource(session, dict(doc), res_id=doc["id"])
        else:
            repository.create_many(session, [dict(doc) for doc in DOCS])
    with database.session() as session:
        for doc in DOCS:
            assert _stored_rows(session, doc["resourceType"], doc["id"]) == _extracted_rows(doc)


def test_updates_replace_the_rows_with_the_extracted_ones(database) -> None:  # type: ignore[no-untyped-def]
    with database.session() as session:
        repository.create_many(session, [dict(doc) for doc in DOCS])
    changed = [
        {**DOCS[0], "name": [{"family": 'Back\\slash "quoted"'}]},
        {**DOCS[1], "valueQuantity": {"value": -0.0, "unit": "mg"}},
    ]
    with database.session() as session:
        current = [repository.read(session, d["resourceType"], d["id"]) for d in changed]
        assert None not in current
        repository.update_many(
            session, [(dict(d), c) for d, c in zip(changed, current, strict=True) if c is not None]
        )
    with database.session() as session:
        for doc in changed:
            assert _stored_rows(session, doc["resourceType"], doc["id"]) == _extracted_rows(doc)


def test_a_float_json_has_no_number_for_keeps_its_value(database) -> None:  # type: ignore[no-untyped-def]
    """orjson writes null for an infinite float; the rows carry the text float8 reads instead."""
    if database.engine.dialect.name != "postgresql":
        pytest.skip("the JSON rows are PostgreSQL's")
    rows = [{"param": "x", "value": v, "low": v, "high": v} for v in (math.inf, -math.inf, 1.5)]
    with database.engine.connect() as conn:
        read = conn.exec_driver_sql(
            "SELECT value, low, high FROM json_to_recordset(%s::json)"
            " AS u(value float8, low float8, high float8)",
            (index._rows_json("number", rows),),
        ).all()
    assert [tuple(r) for r in read] == [(v, v, v) for v in (math.inf, -math.inf, 1.5)]
