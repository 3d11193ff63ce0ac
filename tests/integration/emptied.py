"""Emptying the gateway's tables between tests, as a fresh install has them.

PostgreSQL: TRUNCATE (no row trigger fires). SQLite: DELETE, with its triggers (the audit trail's
append-only guard) set aside meanwhile and put back as they were."""

from __future__ import annotations

from sqlalchemy import Connection, text

from fhir_gateway.store.schema import metadata


def empty_tables(conn: Connection, *, postgres: bool) -> None:
    names = [t.name for t in reversed(metadata.sorted_tables)]
    if postgres:
        conn.execute(text(f"TRUNCATE {', '.join(names)}"))
        return
    triggers = conn.execute(
        text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
    ).all()
    for name, _sql in triggers:
        conn.execute(text(f'DROP TRIGGER "{name}"'))
    for name in names:
        conn.execute(text(f"DELETE FROM {name}"))
    for _name, sql in triggers:
        conn.execute(text(sql))
