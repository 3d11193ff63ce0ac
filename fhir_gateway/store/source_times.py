"""Per resource, the newest source time (message event time) the intake applied to it."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.store.inbox_tables import source_times

__all__ = ["get", "get_many", "advance_many"]


def get(session: Session, res_type: str, res_id: str) -> datetime | None:
    value = session.execute(
        select(source_times.c.source_time).where(
            source_times.c.res_type == res_type, source_times.c.res_id == res_id
        )
    ).scalar_one_or_none()
    return clock.from_db(value) if value is not None else None


def get_many(session: Session, targets: list[tuple[str, str]]) -> dict[tuple[str, str], datetime]:
    """``get`` of each target that has a time, in one statement."""
    if not targets:
        return {}
    rows = session.execute(
        select(source_times.c.res_type, source_times.c.res_id, source_times.c.source_time).where(
            tuple_(source_times.c.res_type, source_times.c.res_id).in_(sorted(set(targets)))
        )
    ).all()
    return {(row[0], row[1]): clock.from_db(row[2]) for row in rows}


def advance_many(
    session: Session, targets: list[tuple[str, str]], when: datetime, message_id: int | None
) -> None:
    """Record ``when`` for each target unless a newer time is already recorded: an upsert whose
    update only moves forward, so two writers of a shared resource (one Organization) never race
    it back. One statement for all targets (each once)."""
    if not targets:
        return
    at = clock.to_db(when)
    rows = [
        {"res_type": t, "res_id": i, "source_time": at, "message_id": message_id}
        for t, i in targets
    ]
    session.connection().execute(_upsert(session.get_bind().dialect.name), rows)


@cache
def _upsert(dialect: str) -> Any:
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(source_times)
    return stmt.on_conflict_do_update(
        index_elements=[source_times.c.res_type, source_times.c.res_id],
        set_={"source_time": stmt.excluded.source_time, "message_id": stmt.excluded.message_id},
        where=source_times.c.source_time < stmt.excluded.source_time,
    )
