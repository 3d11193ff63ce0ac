"""Per resource, the newest source time (message event time) the intake applied to it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.store.inbox_tables import source_times

__all__ = ["get", "advance"]


def get(session: Session, res_type: str, res_id: str) -> datetime | None:
    value = session.execute(
        select(source_times.c.source_time).where(
            source_times.c.res_type == res_type, source_times.c.res_id == res_id
        )
    ).scalar_one_or_none()
    return clock.from_db(value) if value is not None else None


def advance(session: Session, res_type: str, res_id: str, when: datetime, message_id: int | None) -> None:
    """Record ``when`` unless a newer time is already recorded: one upsert whose update only
    moves forward, so two writers of a shared resource (one Organization) never race it back."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(source_times).values(
        res_type=res_type, res_id=res_id, source_time=clock.to_db(when), message_id=message_id)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[source_times.c.res_type, source_times.c.res_id],
        set_={"source_time": stmt.excluded.source_time, "message_id": stmt.excluded.message_id},
        where=source_times.c.source_time < stmt.excluded.source_time,
    ))
