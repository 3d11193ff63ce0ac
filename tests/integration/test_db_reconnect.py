"""PostgreSQL connections are not pinged at every checkout; a connection the server has dropped
(restart, idle timeout, an administrator's pg_terminate_backend) is replaced instead, so the
request after the outage succeeds rather than answering 503, and a unit of work that lost its
connection before doing anything simply runs again."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from fhir_gateway.store.db import Database

FHIR = {"Content-Type": "application/fhir+json"}
_OTHERS = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"


@pytest.fixture
def admin(database: Database) -> Iterator[Engine]:
    if not database.is_postgres:
        pytest.skip("PostgreSQL only: an embedded SQLite database has no server connection to lose")
    engine = create_engine(database.url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def _terminate(admin: Engine, pids: list[int]) -> None:
    """End those backends and wait (bounded) until the server has let them go."""
    with admin.connect() as conn:
        for pid in pids:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        for _ in range(500):
            alive = {row[0] for row in conn.execute(text(_OTHERS))}
            if not alive & set(pids):
                return
            time.sleep(0.02)
    raise AssertionError(f"backends {pids} outlived pg_terminate_backend")


def _gateway_backends(admin: Engine) -> list[int]:
    with admin.connect() as conn:
        return [row[0] for row in conn.execute(text(_OTHERS))]


def test_requests_after_the_server_dropped_every_connection_succeed(client, admin):  # type: ignore[no-untyped-def]
    created = client.post(
        "/Patient", json={"resourceType": "Patient", "name": [{"family": "Okafor"}]}, headers=FHIR
    )
    assert created.status_code == 201
    patient_id = created.json()["id"]
    assert client.get(f"/Patient/{patient_id}").status_code == 200
    backends = _gateway_backends(admin)
    assert backends  # the pool holds connections the server is about to drop

    _terminate(admin, backends)

    read = client.get(f"/Patient/{patient_id}")
    assert read.status_code == 200, read.text
    assert read.json()["name"] == [{"family": "Okafor"}]
    found = client.get("/Patient", params={"family": "Okafor"})
    assert found.status_code == 200 and found.json()["total"] == 1
    again = client.post(
        "/Patient", json={"resourceType": "Patient", "name": [{"family": "Adeyemi"}]}, headers=FHIR
    )
    assert again.status_code == 201, again.text


def test_a_unit_of_work_that_lost_its_connection_before_its_first_statement_runs_again(  # type: ignore[no-untyped-def]
    database, admin
):
    runs: list[int] = []

    def count_patients(session: Session) -> int:
        runs.append(1)
        if len(runs) == 1:  # the server drops this connection after checkout, before any use
            _terminate(admin, [session.connection().connection.dbapi_connection.info.backend_pid])
        return int(session.execute(text("SELECT count(*) FROM resources")).scalar_one())

    assert database.read(count_patients) == 0
    assert len(runs) == 2


def test_a_unit_of_work_that_had_written_is_not_run_again(database, admin):  # type: ignore[no-untyped-def]
    from fhir_gateway.errors import Unavailable

    runs: list[int] = []

    def write_then_lose(session: Session) -> None:
        runs.append(1)
        session.execute(text("SELECT 1"))  # a statement has run: the work may have begun
        _terminate(admin, [session.connection().connection.dbapi_connection.info.backend_pid])
        session.execute(text("SELECT 2"))

    with pytest.raises(Unavailable):
        database.write(write_then_lose)
    assert len(runs) == 1
