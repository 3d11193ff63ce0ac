"""The audit writer stores events in bulk, with index rows taken from the event's shape: every row
must be what ``repository.create_resource`` (the generic path) writes for the same event."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from fhir_gateway import clock
from fhir_gateway.search.extract import extract
from fhir_gateway.security import _audit, _audit_store
from fhir_gateway.security._audit import Auditor, request_event, token_event
from fhir_gateway.security._audit_store import EventRows
from fhir_gateway.security._roles import TokenCaller
from fhir_gateway.store import repository as repo
from fhir_gateway.store.schema import metadata
from fhir_gateway.store.tables import resources

CM = TokenCaller(
    "cm-app", "case-manager", "Organization/care-coordination", frozenset({"system/*.cruds"})
)
PARTNER = TokenCaller("partner-app", "partner", "Organization/hope", frozenset({"system/Task.rus"}))
_ROW_IDS = {"row_id", "res_id"}


def _events() -> list[dict[str, Any]]:
    """Every shape of event the gateway writes, several of each, with odd values among them."""
    requests = [
        ("GET", "/Patient/p1", "", 200, CM, "10.0.0.1"),
        ("GET", "/Patient/p2", "", 200, CM, "10.0.0.1"),  # same shape, another patient
        ("GET", "/Patient/p2", "", 404, CM, "10.0.0.2"),
        ("GET", "/Condition", "patient=p1&code=F32.2", 200, CM, "10.0.0.1"),
        ("GET", "/Condition", "subject=Patient/p9", 200, CM, "10.0.0.1"),
        ("GET", "/Task", "owner=Organization/hope&status=requested", 200, PARTNER, "192.168.1.5"),
        ("POST", "/Patient", "", 201, CM, None),
        ("PUT", "/Task/t-1", "", 200, PARTNER, "192.168.1.5"),
        ("DELETE", "/Patient/p1", "", 204, CM, "10.0.0.1"),
        ("POST", "/", "", 200, CM, "10.0.0.1"),  # transaction
        ("GET", "/Patient/p1/_history/2", "", 200, CM, "10.0.0.1"),
        ("POST", "/$process-message", "", 200, CM, "10.0.0.1"),
        ("GET", "/Patient", "", 401, None, "203.0.113.9"),  # no caller
        ("GET", "/Patient/" + "x" * 80, "", 404, CM, "10.0.0.1"),  # an id too long for the index
        ("GET", "/Patient/ÄÖ", "", 404, CM, "10.0.0.1"),  # not a FHIR id
        ("GET", "/Observation", "patient=Patient/with/slashes", 200, CM, "10.0.0.1"),
        ("GET", "/Patient/p1", "", 200, CM, "10.0.0.1"),
    ]
    events = [
        request_event(method=m, path=p, query=q, status=s, caller=c, address=a)
        for m, p, q, s, c, a in requests
    ]
    events.append(token_event(client_id="cm-app", caller=CM, status=200, address="10.0.0.1"))
    events.append(
        token_event(client_id="Nobody Known", caller=None, status=401, address="10.0.0.3")
    )
    events.append(token_event(client_id=None, caller=None, status=401, address=None))
    return events


def _rows(database) -> dict[str, list[tuple[Any, ...]]]:  # type: ignore[no-untyped-def]
    """Every row of every table, without generated ids, sorted: comparable across two writes."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with database.session(readonly=True) as session:
        for table in metadata.sorted_tables:
            cols = [c for c in table.columns if c.name not in _ROW_IDS]
            rows = session.execute(select(*cols)).all()
            if rows:
                out[table.name] = sorted(tuple(map(repr, r)) for r in rows)
    return out


def _numbered(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Resource ids id-0, id-1, … from here on, for both ways of writing."""
    counter = iter(range(10_000))
    monkeypatch.setattr(repo, "new_id", lambda: f"id-{next(counter)}")
    monkeypatch.setattr(_audit_store, "new_id", repo.new_id)


def test_bulk_rows_equal_the_repository_rows(database, monkeypatch):  # type: ignore[no-untyped-def]
    when = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    clock.set_clock(lambda: when)
    events = _events()
    _numbered(monkeypatch)
    with database.session() as session:
        for event in events:
            repo.create_resource(session, event)
    generic = _rows(database)
    with database.engine.begin() as conn:  # empty again
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    _numbered(monkeypatch)
    writer = EventRows()
    with database.session() as session:
        writer.store(session, events[:7])
    with database.session() as session:
        writer.store(session, events[7:])  # the second batch meets known shapes
    assert _rows(database) == generic


@pytest.mark.parametrize("seconds", [0, 1, 59.999999, 86400 * 400])
def test_index_rows_of_a_known_shape_equal_a_full_extraction(seconds):  # type: ignore[no-untyped-def]
    writer = EventRows()
    start = datetime(2030, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    for n, event in enumerate(_events() * 2):  # the second time round every shape is known
        when = start + timedelta(seconds=seconds * n)
        doc = {
            **event,
            "id": f"e{n}",
            "recorded": clock.to_instant(when),
            "meta": {**event["meta"], "versionId": "1", "lastUpdated": clock.to_instant(when)},
        }
        assert writer.index_rows(doc) == extract(doc), event["subtype"]


def test_a_search_parameter_added_later_is_indexed(database):  # type: ignore[no-untyped-def]
    from fhir_gateway.search.registry import get_registry

    writer = EventRows()
    event = request_event(
        method="GET", path="/Patient/p1", query="", status=200, caller=CM, address=None
    )
    doc = {
        **event,
        "id": "e1",
        "meta": {**event["meta"], "versionId": "1", "lastUpdated": event["recorded"]},
    }
    with database.session() as session:
        writer.store(session, [event])  # the shape is known now
    definition = {
        "resourceType": "SearchParameter",
        "url": "http://example.org/sp/audit-description",
        "status": "active",
        "code": "description-text",
        "base": ["AuditEvent"],
        "type": "string",
        "expression": "AuditEvent.entity.description",
    }
    registry = get_registry()
    registry.add(definition)
    try:
        with database.session() as session:
            writer.store(session, [event])
        assert writer.index_rows(doc) == extract(doc)
        described = request_event(
            method="GET", path="/Condition", query="patient=p1", status=200, caller=CM, address=None
        )
        described_doc = {
            **described,
            "id": "e2",
            "meta": {**described["meta"], "versionId": "1", "lastUpdated": described["recorded"]},
        }
        rows = writer.index_rows(described_doc)
        assert rows == extract(described_doc)
        assert any(r["param"] == "description-text" for r in rows.get("string", []))
    finally:
        registry.remove(definition)


def _stored(database) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    with database.session(readonly=True) as session:
        rows = session.execute(
            select(resources.c.content).where(resources.c.res_type == "AuditEvent")
        ).all()
    return [r[0] for r in rows]


def test_the_writer_gathers_events_and_flush_and_close_cut_the_wait_short(database, caplog):  # type: ignore[no-untyped-def]
    auditor = Auditor(database)
    for n in range(3):
        auditor.record_request(
            method="GET", path=f"/Patient/p{n}", query="", status=200, caller=CM, address=None
        )
    started = time.monotonic()
    auditor.flush()
    assert time.monotonic() - started < _audit._LINGER  # flush does not wait out the linger
    assert len(_stored(database)) == 3
    auditor.record(lambda: 1 / 0)  # an event that cannot be built: logged, the others stored
    auditor.record(token_event(client_id="cm-app", caller=CM, status=200, address=None))
    auditor.flush()
    assert "could not build an audit event" in caplog.text
    assert len(_stored(database)) == 4
    auditor.record_request(
        method="DELETE", path="/Patient/p1", query="", status=204, caller=CM, address=None
    )
    auditor.close()  # stores what is queued
    assert len(_stored(database)) == 5


@pytest.mark.parametrize(
    "recorded", ["2031-05-06T07:08:09Z", "2031-05-06T09:08:09.123456+02:00", "2031-05-06", "soon"]
)
def test_an_event_recorded_otherwise_is_extracted_in_full(recorded):  # type: ignore[no-untyped-def]
    event = request_event(
        method="GET", path="/Patient/p1", query="", status=200, caller=CM, address=None
    )
    doc = {
        **event,
        "id": "e1",
        "recorded": recorded,
        "meta": {**event["meta"], "versionId": "1", "lastUpdated": event["recorded"]},
    }
    assert EventRows().index_rows(doc) == extract(doc)


def test_event_ids_are_uuids_in_the_order_they_were_made():  # type: ignore[no-untyped-def]
    import uuid

    ids = []
    for _ in range(3):
        ids.append(_audit_store.new_id())
        time.sleep(0.002)
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert all(uuid.UUID(i).version == 7 and uuid.UUID(i).variant == uuid.RFC_4122 for i in ids)
