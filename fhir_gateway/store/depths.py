"""Counts an operator watches: inbox and outbox rows by status and the age of the oldest pending
notification (read at scrape time), and how many resources a reindex has ahead of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fhir_gateway.store.inbox_tables import inbox_messages
from fhir_gateway.store.outbox_tables import outbox
from fhir_gateway.store.tables import resources

__all__ = ["Depths", "depths", "resource_count"]


@dataclass(frozen=True, slots=True)
class Depths:
    inbox: dict[str, int]
    outbox: dict[str, int]
    oldest_pending: datetime | None


def depths(session: Session) -> Depths:
    inbox_rows = session.execute(
        select(inbox_messages.c.status, func.count()).group_by(inbox_messages.c.status)
    )
    outbox_rows = session.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
    oldest = session.execute(
        select(func.min(outbox.c.created_at)).where(outbox.c.status == "pending")
    ).scalar()
    return Depths({s: int(n) for s, n in inbox_rows}, {s: int(n) for s, n in outbox_rows}, oldest)


def resource_count(session: Session, resource_type: str | None = None) -> int:
    query = select(func.count()).select_from(resources).where(resources.c.deleted.is_(False))
    if resource_type is not None:
        query = query.where(resources.c.res_type == resource_type)
    return int(session.execute(query).scalar_one())
