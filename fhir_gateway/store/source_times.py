"""Per resource, the newest source time (message event time) the intake applied to it."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.store.inbox_tables import source_times
from fhir_gateway.store.prebuilt import Prebuilt

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
    it back. One statement per 500 targets, each once however often it is named."""
    if not targets:
        return
    dialect = session.get_bind().dialect.name
    targets = sorted(set(targets))  # a row twice in one upsert is an error on PostgreSQL
    for start in range(0, len(targets), _PER_STATEMENT):
        part = targets[start : start + _PER_STATEMENT]
        params: dict[str, Any] = {"source_time": clock.to_db(when), "message_id": message_id}
        for n, (res_type, res_id) in enumerate(part):
            params[f"t{n}"], params[f"i{n}"] = res_type, res_id
        _upsert(dialect, len(part)).run(session, params)


_PER_STATEMENT = 500  # targets: within any database's limit of bound values


@lru_cache(maxsize=128)
def _upsert(dialect: str, count: int) -> Prebuilt:
    """The upsert of ``count`` targets (t0, i0 …) at one time, built once per count."""
    rows: list[dict[str, Any]] = [
        {
            "res_type": bindparam(f"t{n}"),
            "res_id": bindparam(f"i{n}"),
            "source_time": bindparam("source_time"),
            "message_id": bindparam("message_id"),
        }
        for n in range(count)
    ]
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(source_times).values(rows)
    return Prebuilt(
        stmt.on_conflict_do_update(
            index_elements=[source_times.c.res_type, source_times.c.res_id],
            set_={"source_time": stmt.excluded.source_time, "message_id": stmt.excluded.message_id},
            where=source_times.c.source_time < stmt.excluded.source_time,
        )
    )
