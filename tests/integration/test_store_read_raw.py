"""The hottest read (``Database.fetch_one``, behind read by id): on SQLite each thread reads on a
connection of its own; it sees every change committed before each read, on any thread, and keeps
working once the database is disposed."""

from __future__ import annotations

import threading

from fhir_gateway.store import repository as repo
from fhir_gateway.store.db import Database
from fhir_gateway.store.migrate import upgrade

PATIENT = {"resourceType": "Patient", "gender": "female"}


def _create(database: Database, gender: str) -> str:
    def write(session):  # type: ignore[no-untyped-def]
        return repo.create_resource(session, {**PATIENT, "gender": gender}).res_id

    return database.write(write)


def test_each_read_sees_what_was_committed_before_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    database = Database(f"sqlite:///{tmp_path}/reads.db")
    try:
        upgrade(database.engine)
        first = _create(database, "female")
        assert repo.read_raw(database, "Patient", first) is not None  # the thread's connection
        later = _create(database, "male")  # committed after that connection was opened
        raw = repo.read_raw(database, "Patient", later)
        assert raw is not None and b'"male"' in raw.body
        seen: list[object] = []
        reader = threading.Thread(
            target=lambda: seen.append(repo.read_raw(database, "Patient", later))
        )
        reader.start()
        reader.join()
        assert seen and seen[0] is not None
        database.dispose()
        assert repo.read_raw(database, "Patient", first) is not None  # a fresh connection
        assert repo.read_raw(database, "Patient", "nobody") is None
    finally:
        database.dispose()
