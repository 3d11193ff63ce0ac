"""The audit trail as rows: each request's row is committed before its answer starts (a crash
never loses the record of a disclosure), and the rows search as FHIR AuditEvents."""

from __future__ import annotations

from typing import Any

from security_helpers import BASE, bearer, get_token, register, secure_settings
from sqlalchemy import select
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_gateway import clock
from fhir_gateway.app import create_app
from fhir_gateway.store.security_tables import audit_log


class _Probe:
    """Looks, from a connection of its own, at the trail when each response starts."""

    def __init__(self, app: ASGIApp, database: Any) -> None:
        self.app, self.database = app, database
        self.seen: list[tuple[str, int, list[tuple[str, str, str]]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def look(message: Message) -> None:
            if message["type"] == "http.response.start":
                with self.database.engine.connect() as conn:
                    rows = conn.execute(
                        select(audit_log.c.subtype, audit_log.c.outcome, audit_log.c.detail)
                    ).all()
                on_record = [(r.subtype, r.outcome, r.detail.get("p")) for r in rows]
                self.seen.append((scope["path"], message["status"], on_record))
            await send(message)

        await self.app(scope, receive, look if scope["type"] == "http" else send)


def test_a_read_is_on_record_before_its_answer_starts(database, database_url):  # type: ignore[no-untyped-def]
    app = create_app(secure_settings(database_url), database=database)
    probe = _Probe(app, database)
    with TestClient(probe, base_url=BASE) as client:
        admin = bearer(get_token(client, register(database, "admin", ["system/*.cruds"], None)))
        pid = client.post(
            "/Patient", json={"resourceType": "Patient", "gender": "male"}, headers=admin
        ).json()["id"]
        client.get(f"/Patient/{pid}", headers=admin)
        client.get("/Patient/nobody-at-all", headers=admin)
        client.get(f"/Condition?patient={pid}", headers=admin)
        client.get("/Patient", headers={"Authorization": "Bearer not-a-token"})

    def on_record_when_answered(path: str, subtype: str, outcome: str) -> bool:
        return any(
            (subtype, outcome, path) in rows
            for seen_path, _, rows in probe.seen
            if seen_path == path
        )

    assert on_record_when_answered(f"/Patient/{pid}", "read", "0")
    assert on_record_when_answered("/Patient/nobody-at-all", "read", "4")
    assert on_record_when_answered("/Condition", "search-type", "0")
    assert on_record_when_answered("/Patient", "search-type", "4")  # the refused token
    assert on_record_when_answered("/Patient", "create", "0")


def _entries(client: TestClient, query: str, headers: dict[str, str]) -> tuple[list[dict], Any]:
    bundle = client.get(f"/AuditEvent?{query}", headers=headers).json()
    return [e["resource"] for e in bundle.get("entry", [])], bundle


def test_the_trail_searches_by_date_subtype_and_client_and_pages(database, database_url):  # type: ignore[no-untyped-def]
    app = create_app(secure_settings(database_url), database=database)
    with TestClient(app, base_url=BASE) as client:
        key = register(database, "admin", ["system/*.cruds"], "Organization/care-coordination")
        admin = bearer(get_token(client, key))
        since = clock.to_instant(clock.now())
        for _ in range(3):
            client.get("/Patient/p-audit", headers=admin)

        reads, bundle = _entries(
            client, f"date=ge{since}&subtype=read&altid={key.client_id}", admin
        )
        assert len(reads) == 3 and bundle["total"] == 3
        assert all(e["subtype"][0]["code"] == "read" for e in reads)
        assert all(e["meta"]["versionId"] == "1" and e["id"] for e in reads)
        assert reads[0]["recorded"] >= reads[-1]["recorded"]  # newest first

        first, bundle = _entries(client, "subtype=read&_count=2&_sort=date", admin)
        following = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
        rest = client.get(following.removeprefix(BASE), headers=admin).json()["entry"]
        assert [e["id"] for e in first] + [e["resource"]["id"] for e in rest] == [
            e["id"] for e in reversed(reads)
        ]

        by_id = client.get(f"/AuditEvent/{reads[0]['id']}", headers=admin).json()
        assert by_id == reads[0]
        assert _entries(client, "patient=Patient/p-audit&action=R", admin)[0] == reads
        assert _entries(client, f"date=lt{since}&subtype=read", admin)[0] == []
        assert client.get("/AuditEvent?agent-name=x", headers=admin).status_code == 400
        assert client.get("/AuditEvent/no-such-event", headers=admin).status_code == 404


_POSTED = {
    "resourceType": "AuditEvent",
    "meta": {
        "tag": [{"system": "urn:test:batch", "code": "b1"}],
        "security": [{"system": "urn:test:label", "code": "R"}],
    },
    "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
    "action": "R",
    "recorded": "2024-03-01T10:00:00Z",
    "outcome": "0",
    "agent": [
        {"who": {"reference": "Practitioner/pr-1"}, "requestor": True},
        {"who": {"reference": "Organization/org-1"}, "requestor": False},
    ],
    "source": {"observer": {"reference": "Organization/org-1"}},
    "entity": [{"what": {"reference": "Patient/p-posted"}}, {"what": {"reference": "Task/t-1"}}],
}


def test_an_admins_posted_auditevent_joins_the_trail(database, database_url):  # type: ignore[no-untyped-def]
    app = create_app(secure_settings(database_url), database=database)
    with TestClient(app, base_url=BASE) as client:
        key = register(database, "admin", ["system/*.cruds"], "Organization/care-coordination")
        admin = bearer(get_token(client, key))
        since = clock.to_instant(clock.now())
        created = client.post("/AuditEvent", json=_POSTED, headers=admin)
        assert created.status_code == 201, created.text
        event_id = created.json()["id"]

        def ids(query: str) -> list[str]:
            """Among events recorded before 2025: not the trail's own rows of these searches."""
            return [e["id"] for e in _entries(client, f"{query}&date=lt2025", admin)[0]]

        assert ids(f"_id={event_id}") == [event_id]
        for query in (
            "patient=Patient/p-posted",
            "patient=p-posted",
            "agent=Practitioner/pr-1",
            "agent=Organization/org-1",
            "entity=Task/t-1",
            "entity=Patient/p-posted",
            "_tag=urn:test:batch|b1",
            "_tag=b1",
            "_security=urn:test:label|",
            f"_lastUpdated=ge{since}",
            "date=2024-03-01",
        ):
            assert ids(query) == [event_id], query
        for query in ("_tag=urn:other|b1", "_profile=http://x", "date=lt2024-03-01"):
            assert event_id not in ids(query), query
        # the gateway's own events carry no tags: a tag finds none of them
        assert [e["id"] for e in _entries(client, "_tag=b1,b2", admin)[0]] == [event_id]

        found = _entries(client, f"_id={event_id}", admin)[0][0]
        read = client.get(f"/AuditEvent/{event_id}", headers=admin).json()
        assert read == found
        assert read["recorded"] == "2024-03-01T10:00:00Z"
        assert read["meta"]["lastUpdated"] >= since


def test_a_write_is_recorded_once_with_its_status_and_a_refused_one_as_refused(
    database, database_url
):  # type: ignore[no-untyped-def]
    app = create_app(secure_settings(database_url), database=database)
    with TestClient(app, base_url=BASE) as client:
        key = register(database, "case-manager", ["system/*.cruds"], "Organization/cc")
        cm = bearer(get_token(client, key))
        created = client.post("/Patient", json={"resourceType": "Patient"}, headers=cm)
        pid = created.json()["id"]
        client.put(f"/Patient/{pid}", json={"resourceType": "Patient", "id": pid}, headers=cm)
        refused = client.post("/Patient", json={"resourceType": "Patient", "bad": 1}, headers=cm)
        assert refused.status_code == 400

    with database.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.subtype, audit_log.c.outcome, audit_log.c.detail).where(
                audit_log.c.client_id == key.client_id
            )
        ).all()
    writes = sorted(
        (r.subtype, r.outcome, r.detail["s"]) for r in rows if r.subtype in ("create", "update")
    )
    assert writes == [("create", "0", 201), ("create", "4", 400), ("update", "0", 200)]


def test_a_row_that_would_wait_for_sqlites_write_lock_is_left_to_a_worker_thread(tmp_path):  # type: ignore[no-untyped-def]
    # The read route inserts its row on the event loop only when it need not wait for the lock.
    from fhir_gateway.security._audit_rows import RowWriter, request_row
    from fhir_gateway.store.db import Database
    from fhir_gateway.store.migrate import upgrade

    database = Database(f"sqlite:///{tmp_path}/lock.db")
    writer = RowWriter(database.engine)
    try:
        upgrade(database.engine)

        def row() -> dict[str, Any]:
            return request_row(
                method="GET", path="/Patient/p", query="", status=200, caller=None, address=None
            )

        def stored() -> int:
            with database.engine.connect() as conn:
                return len(conn.execute(select(audit_log.c.id)).all())

        holder = database.engine.raw_connection()
        holder.cursor().execute("BEGIN IMMEDIATE")  # another transaction writes
        assert writer.insert(row(), wait=False) is False
        holder.cursor().execute("COMMIT")
        holder.close()
        assert stored() == 0
        assert writer.insert(row(), wait=False) is True
        assert writer.insert(row()) is True
        assert stored() == 2
        with database.engine.connect() as conn:  # the pooled connection waits again as before
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        writer.close()  # its own connection, for rows that must not wait: opened again if needed
        assert writer.insert(row(), wait=False) is True
        assert stored() == 3
    finally:
        writer.close()
        database.dispose()


def test_the_trail_search_has_the_limits_every_search_has(database, database_url):  # type: ignore[no-untyped-def]
    app = create_app(secure_settings(database_url), database=database)
    with TestClient(app, base_url=BASE) as client:
        key = register(database, "admin", ["system/*.cruds"], "Organization/care-coordination")
        admin = bearer(get_token(client, key))
        many = ",".join(f"Patient/p{i}" for i in range(101))  # FHIR_GATEWAY_SEARCH_MAX_VALUES 100
        too_many = client.get(f"/AuditEvent?patient={many}", headers=admin)
        assert too_many.status_code == 400, too_many.text
        assert "at most 100" in too_many.text
        repeated = "&".join(["subtype=read"] * 11)  # FHIR_GATEWAY_SEARCH_MAX_REPEATS 10
        assert client.get(f"/AuditEvent?{repeated}", headers=admin).status_code == 400
        huge = client.get(f"/AuditEvent?_offset={2**63}", headers=admin)
        assert huge.status_code == 400 and "_offset" in huge.text
        within = client.get(f"/AuditEvent?_offset={2**63 - 1}", headers=admin)
        assert within.status_code == 200 and within.json()["entry"] == []


def test_the_database_refuses_to_change_or_delete_the_trail(database, database_url):  # type: ignore[no-untyped-def]
    """Not only the API: a stray script or a write-enabled account cannot edit the record."""
    from sqlalchemy import delete, insert, update
    from sqlalchemy.exc import DBAPIError

    from fhir_gateway.store.security_tables import audit_log_terms

    app = create_app(secure_settings(database_url), database=database)
    with TestClient(app, base_url=BASE) as client:
        admin = bearer(get_token(client, register(database, "admin", ["system/*.cruds"], None)))
        client.get("/Patient/someone", headers=admin)
    with database.engine.begin() as conn:
        conn.execute(
            insert(audit_log_terms), {"id": "x", "name": "agent", "system": "", "value": "y"}
        )
    with database.engine.connect() as conn:
        before = conn.execute(select(audit_log)).all()
    assert before
    attempts = [
        update(audit_log).values(outcome="0"),
        delete(audit_log),
        update(audit_log_terms).values(value="z"),
        delete(audit_log_terms),
    ]
    for statement in attempts:
        with database.engine.connect() as conn:
            try:
                conn.execute(statement)
                conn.commit()
            except DBAPIError as exc:
                assert "the audit trail is append-only" in str(exc.orig)
            else:
                raise AssertionError(f"{statement} was allowed")
    with database.engine.connect() as conn:
        assert conn.execute(select(audit_log)).all() == before
        assert conn.execute(select(audit_log_terms.c.value)).scalars().all() == ["y"]


def test_a_downgrade_takes_the_guard_away_and_an_upgrade_puts_it_back(tmp_path):  # type: ignore[no-untyped-def]
    from sqlalchemy import delete, insert
    from sqlalchemy.exc import DBAPIError

    from fhir_gateway.store.db import Database
    from fhir_gateway.store.migrate import upgrade
    from fhir_gateway.store.security_tables import audit_log_terms

    database = Database(f"sqlite:///{tmp_path}/guard.db")
    try:
        upgrade(database.engine)
        _downgrade(database, "0014")
        term = {"id": "x", "name": "agent", "system": "", "value": "y"}
        with database.engine.begin() as conn:
            conn.execute(insert(audit_log_terms), term)
            conn.execute(delete(audit_log_terms))  # no guard at 0014
            conn.execute(insert(audit_log_terms), term)
        upgrade(database.engine)
        with database.engine.begin() as conn:
            try:
                conn.execute(delete(audit_log_terms))
            except DBAPIError as exc:
                assert "append-only" in str(exc.orig)
            else:
                raise AssertionError("the guard is back at head")
    finally:
        database.dispose()


def _downgrade(database, revision: str) -> None:  # type: ignore[no-untyped-def]
    from alembic import command

    from fhir_gateway.store.migrate import alembic_config

    config = alembic_config(database.engine.url.render_as_string(hide_password=False))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
