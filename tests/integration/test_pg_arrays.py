"""Arrays of a known type (store/pg_arrays.py): a PostgreSQL connection of the gateway's pool
dumps them with the type given, as the elements say; psycopg's own adapters stay as they were."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.adapt import PyFormat

from fhir_gateway.store.pg_arrays import Bools, Ints, Texts


def test_known_arrays_round_trip_on_the_pools_connections(database) -> None:  # type: ignore[no-untyped-def]
    if database.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    with database.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw.adapters.get_dumper(Texts, PyFormat.BINARY).oid  # registered: typed
        values = (Texts(['say "hi"\\', None, "é"]), Ints([1, None, 7]), Bools([True, None]))
        row = conn.exec_driver_sql(
            "SELECT %b::text[], %b::int[], %b::bool[], %b::jsonb[]",
            (*values, Texts(['{"a": "b\\"c"}'])),
        ).one()
    assert list(row) == [list(v) for v in values] + [[{"a": 'b"c'}]]
    assert not psycopg.adapters.get_dumper(Texts, PyFormat.BINARY).oid  # not process-wide
