"""Per resource, the newest source time (message event time) the intake applied to it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
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
    """Record ``when`` unless a newer time is already recorded (a conditional update, so two
    writers of a shared resource, e.g. one Organization, never move its time backwards)."""
    stamp = clock.to_db(when)
    if get(session, res_type, res_id) is None:
        try:
            with session.begin_nested():
                session.execute(insert(source_times).values(
                    res_type=res_type, res_id=res_id, source_time=stamp, message_id=message_id))
            return
        except IntegrityError:
            pass  # a concurrent first writer: fall through to the conditional update
    session.execute(
        update(source_times)
        .where(source_times.c.res_type == res_type, source_times.c.res_id == res_id,
               source_times.c.source_time < stamp)
        .values(source_time=stamp, message_id=message_id)
    )
