"""The Alembic migrations build exactly the schema the code declares, on the suite's database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fhir_gateway.store.schema import metadata


def test_migrated_schema_matches_the_tables_in_code(database):
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_audit_events_stored_before_the_trail_became_rows_are_still_found(tmp_path):  # type: ignore[no-untyped-def]
    import json

    from fhir_gateway import clock
    from fhir_gateway.context import SYSTEM
    from fhir_gateway.security import accounting, search_audit_events
    from fhir_gateway.security._disclosures import disclosure_event
    from fhir_gateway.settings import Settings
    from fhir_gateway.store import repository as repo
    from fhir_gateway.store.db import Database
    from fhir_gateway.store.migrate import upgrade

    url = f"sqlite:///{tmp_path}/old.db"
    database = Database(url)
    try:
        upgrade(database.engine, "0013")
        item = {
            "patient": "Patient/p-old",
            "recipient": "Organization/hope",
            "consent": "Consent/c-1",
            "purposes": ["TREAT"],
            "labels": ["42CFRPart2"],
            "resource": "Condition/c-9/_history/1",
            "client": "partner-app",
        }
        old = disclosure_event([item], "api", clock.now())
        with database.session() as session:
            stored = repo.create_resource(session, old)
        upgrade(database.engine)

        with database.session(readonly=True) as session:
            listed = accounting(session, "Patient/p-old")

            def search(*params: tuple[str, str]) -> dict:
                return json.loads(
                    search_audit_events(
                        session,
                        list(params),
                        caller=SYSTEM,
                        base_url="",
                        settings=Settings(database_url=url),
                    )
                )

            found = search(("patient", "Patient/p-old"))
            since = clock.to_instant(stored.last_updated)
            # every agent and entity it names, and its own lastUpdated, find it too
            also = search(
                ("agent", "Organization/hope"), ("entity", "Consent/c-1"), ("_lastUpdated", since)
            )
        assert [e["id"] for e in listed] == [stored.res_id]
        assert listed[0]["entity"] == old["entity"] and listed[0]["agent"] == old["agent"]
        assert [e["resource"]["id"] for e in found["entry"]] == [stored.res_id]
        assert [e["resource"]["id"] for e in also["entry"]] == [stored.res_id]
        assert found["entry"][0]["resource"]["meta"]["lastUpdated"] == since
    finally:
        database.dispose()
