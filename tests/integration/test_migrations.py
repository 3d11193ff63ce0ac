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
