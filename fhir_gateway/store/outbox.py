"""Outbox rows: enqueue (inside the caller's transaction), claim for delivery, record attempts,
list and replay dead letters; and the per-subscription secret and event counter.

Claiming is safe with any number of workers. On PostgreSQL the due rows are selected
``FOR UPDATE SKIP LOCKED``, so concurrent claimers never block on or take the same row; on SQLite
the claim runs under ``BEGIN IMMEDIATE`` (the single writer), which serialises claimers. Either
way a claimed row carries a lease (owner and expiry): a worker that dies mid-delivery gives its
rows back when the lease runs out, and a result is only recorded by the lease holder.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import CursorResult, and_, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.store.outbox_tables import outbox, outbox_attempts, subscription_state
from fhir_gateway.store.pg_arrays import Texts
from fhir_gateway.store.prebuilt import run_sql

__all__ = [
    "OutboxRow",
    "Attempt",
    "enqueue",
    "enqueue_many",
    "pending_row",
    "claim",
    "finish",
    "withdraw",
    "release",
    "get",
    "attempts_of",
    "list_rows",
    "replay",
    "counts",
    "ensure_subscription",
    "set_secret",
    "secret_of",
    "set_viewer",
    "viewer_of",
    "secrets_of",
    "next_event_numbers",
    "forget_subscription",
]


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    created_at: datetime
    retry_since: datetime
    channel: str
    subscription: str | None
    event_number: int | None
    focus: str | None
    method: str
    url: str
    headers: dict[str, str]
    content_type: str | None
    body: bytes
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    dead_at: datetime | None
    disclosures: list[dict[str, Any]] | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "channel": self.channel,
            "subscription": self.subscription,
            "event": self.event_number,
            "focus": self.focus,
            "url": self.url,
            "attempts": self.attempts,
            "next_attempt_at": clock.to_instant(self.next_attempt_at),
            "last_status": self.last_status,
            "last_error": self.last_error,
        }


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    at: datetime
    worker: str
    http_status: int | None
    error: str | None
    outcome: str


def _opt(value: datetime | None) -> datetime | None:
    return clock.from_db(value) if value is not None else None


def _row(r: Any) -> OutboxRow:
    return OutboxRow(
        id=r.id,
        created_at=clock.from_db(r.created_at),
        retry_since=clock.from_db(r.retry_since),
        channel=r.channel,
        subscription=r.subscription,
        event_number=r.event_number,
        focus=r.focus,
        method=r.method,
        url=r.url,
        headers=dict(r.headers or {}),
        content_type=r.content_type,
        body=bytes(r.body),
        status=r.status,
        attempts=r.attempts,
        next_attempt_at=clock.from_db(r.next_attempt_at),
        last_status=r.last_status,
        last_error=r.last_error,
        delivered_at=_opt(r.delivered_at),
        dead_at=_opt(r.dead_at),
        disclosures=list(r.disclosures) if r.disclosures else None,
    )


# -- writing ------------------------------------------------------------------------------------


def enqueue(
    session: Session,
    *,
    channel: str,
    method: str,
    url: str,
    body: bytes,
    content_type: str | None,
    headers: dict[str, str] | None = None,
    subscription: str | None = None,
    event_number: int | None = None,
    focus: str | None = None,
    disclosures: list[dict[str, Any]] | None = None,
) -> int:
    """Add a pending row in the caller's transaction; returns its id. ``disclosures``: the patient
    data it discloses and the consent each rests on (opaque here; kept for the accounting)."""
    row = pending_row(
        channel=channel,
        method=method,
        url=url,
        body=body,
        content_type=content_type,
        headers=headers,
        subscription=subscription,
        event_number=event_number,
        focus=focus,
        disclosures=disclosures,
    )
    result = session.execute(insert(outbox).values(**row))
    key = cast(CursorResult[Any], result).inserted_primary_key
    assert key is not None  # a single-row INSERT always has one
    return int(key[0])


def pending_row(
    *,
    channel: str,
    method: str,
    url: str,
    body: bytes,
    content_type: str | None,
    headers: dict[str, str] | None = None,
    subscription: str | None = None,
    event_number: int | None = None,
    focus: str | None = None,
    disclosures: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The columns of a new pending row (due now), for ``enqueue_many``."""
    now = clock.to_db(clock.now())
    return {
        "created_at": now,
        "retry_since": now,
        "channel": channel,
        "subscription": subscription,
        "event_number": event_number,
        "focus": focus,
        "method": method,
        "url": url,
        "headers": headers or {},
        "content_type": content_type,
        "body": body,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "disclosures": disclosures or None,
    }


# Built once and run with a list of rows: SQLAlchemy renders that as one multi-row INSERT
# ("insertmanyvalues", which RETURNING turns on for every driver) from a statement compiled once;
# ``insert(outbox).values(rows)`` was compiled anew for every batch.
_INSERT_MANY = insert(outbox).returning(outbox.c.id)
# On PostgreSQL one array per column (unnest): the text is the same for any number of rows, so
# the driver parses it once (a VALUES list of 15 named parameters a row was parsed every time);
# JSON as SQLAlchemy's JSONB column writes it (None as JSON null).
_PENDING = (
    ("created_at", "timestamp"),
    ("retry_since", "timestamp"),
    ("channel", "text"),
    ("subscription", "text"),
    ("event_number", "int8"),
    ("focus", "text"),
    ("method", "text"),
    ("url", "text"),
    ("headers", "jsonb"),
    ("content_type", "text"),
    ("body", "bytea"),
    ("status", "text"),
    ("attempts", "int"),
    ("next_attempt_at", "timestamp"),
    ("disclosures", "jsonb"),
)
_PG_INSERT_MANY = (
    f"INSERT INTO {outbox.name} ({', '.join(c for c, _ in _PENDING)}) SELECT * FROM unnest("
    + ", ".join(f"%b::{t}[]" for _, t in _PENDING)
    + ")"
)


def enqueue_many(session: Session, rows: list[dict[str, Any]]) -> None:
    """Add the ``pending_row``s in the caller's transaction, in one multi-row INSERT (a batch of
    writes queues many rows at once: one statement, not one per row)."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(_INSERT_MANY, rows).all()
        return
    columns = [
        Texts(orjson.dumps(row[c]).decode() for row in rows)
        if pg_type == "jsonb"
        else [row[c] for row in rows]
        for c, pg_type in _PENDING
    ]
    run_sql(session, _PG_INSERT_MANY, tuple(columns))


def claim(
    session: Session, *, worker: str, limit: int, lease: timedelta, postgres: bool
) -> list[OutboxRow]:
    """Take up to ``limit`` due rows for ``worker`` until the lease runs out."""
    now = clock.now()
    due = (
        select(outbox.c.id)
        .where(
            outbox.c.status == "pending",
            outbox.c.next_attempt_at <= clock.to_db(now),
            or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < clock.to_db(now)),
        )
        .order_by(outbox.c.next_attempt_at, outbox.c.id)
        .limit(limit)
    )
    if postgres:
        due = due.with_for_update(skip_locked=True)
    ids = list(session.execute(due).scalars())
    if not ids:
        return []
    session.execute(
        update(outbox)
        .where(outbox.c.id.in_(ids))
        .values(lease_owner=worker, lease_until=clock.to_db(now + lease))
    )
    rows = session.execute(select(outbox).where(outbox.c.id.in_(ids)).order_by(outbox.c.id)).all()
    return [_row(r) for r in rows]


def finish(
    session: Session,
    row_id: int,
    *,
    worker: str,
    outcome: str,
    http_status: int | None,
    error: str | None,
    next_attempt_at: datetime | None = None,
) -> bool:
    """Record one attempt and its outcome (delivered | retry | dead). False when the lease was lost
    (another worker has the row now): the attempt is still recorded, the row left alone."""
    now = clock.now()
    current = session.execute(
        select(outbox.c.attempts, outbox.c.lease_owner).where(outbox.c.id == row_id)
    ).first()
    if current is None:
        return False
    number = current.attempts + 1
    session.execute(
        insert(outbox_attempts).values(
            outbox_id=row_id,
            number=number,
            at=clock.to_db(now),
            worker=worker,
            http_status=http_status,
            error=error,
            outcome=outcome,
        )
    )
    values: dict[str, Any] = {
        "attempts": number,
        "last_status": http_status,
        "last_error": error,
        "lease_owner": None,
        "lease_until": None,
    }
    if outcome == "delivered":
        values.update(status="delivered", delivered_at=clock.to_db(now))
    elif outcome == "dead":
        values.update(status="dead", dead_at=clock.to_db(now))
    else:
        values.update(next_attempt_at=clock.to_db(next_attempt_at or now))
    result = session.execute(
        update(outbox)
        .where(outbox.c.id == row_id, outbox.c.lease_owner == worker, outbox.c.status == "pending")
        .values(**values)
    )
    return cast(CursorResult[Any], result).rowcount == 1


def withdraw(session: Session, row_id: int, *, worker: str, reason: str) -> bool:
    """A claimed row that must not be sent (what it discloses is no longer permitted): recorded as
    an attempt and set ``withdrawn``, which ``replay`` never brings back."""
    now = clock.now()
    current = session.execute(select(outbox.c.attempts).where(outbox.c.id == row_id)).first()
    if current is None:
        return False
    session.execute(
        insert(outbox_attempts).values(
            outbox_id=row_id,
            number=current.attempts + 1,
            at=clock.to_db(now),
            worker=worker,
            http_status=None,
            error=reason,
            outcome="withdrawn",
        )
    )
    result = session.execute(
        update(outbox)
        .where(outbox.c.id == row_id, outbox.c.lease_owner == worker, outbox.c.status == "pending")
        .values(
            status="withdrawn",
            attempts=current.attempts + 1,
            last_error=reason,
            lease_owner=None,
            lease_until=None,
        )
    )
    return cast(CursorResult[Any], result).rowcount == 1


def release(session: Session, row_ids: list[int], *, worker: str) -> None:
    """Give claimed rows back untouched (a worker stopping before it tried them)."""
    if row_ids:
        session.execute(
            update(outbox)
            .where(outbox.c.id.in_(row_ids), outbox.c.lease_owner == worker)
            .values(lease_owner=None, lease_until=None)
        )


# -- reading and operating -----------------------------------------------------------------------


def get(session: Session, row_id: int) -> OutboxRow | None:
    row = session.execute(select(outbox).where(outbox.c.id == row_id)).first()
    return _row(row) if row else None


def attempts_of(session: Session, row_id: int) -> list[Attempt]:
    rows = session.execute(
        select(outbox_attempts)
        .where(outbox_attempts.c.outbox_id == row_id)
        .order_by(outbox_attempts.c.number)
    ).all()
    return [
        Attempt(r.number, clock.from_db(r.at), r.worker, r.http_status, r.error, r.outcome)
        for r in rows
    ]


def list_rows(
    session: Session, *, status: str | None = None, limit: int = 50, offset: int = 0
) -> list[OutboxRow]:
    query = select(outbox).order_by(outbox.c.id).limit(limit).offset(offset)
    if status is not None:
        query = query.where(outbox.c.status == status)
    return [_row(r) for r in session.execute(query).all()]


def replay(session: Session, row_ids: list[int] | None = None) -> int:
    """Dead letters (all, or these ids) back to pending, with a fresh retry window."""
    now = clock.to_db(clock.now())
    cond = outbox.c.status == "dead"
    if row_ids is not None:
        cond = and_(cond, outbox.c.id.in_(row_ids))
    result = session.execute(
        update(outbox)
        .where(cond)
        .values(
            status="pending",
            retry_since=now,
            next_attempt_at=now,
            dead_at=None,
            lease_owner=None,
            lease_until=None,
        )
    )
    return int(cast(CursorResult[Any], result).rowcount)


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)).all()
    return {status: int(n) for status, n in rows}


# -- subscription state ---------------------------------------------------------------------------


def ensure_subscription(session: Session, subscription: str) -> None:
    """A state row with a fresh random secret, unless the subscription has one."""
    exists = session.execute(
        select(subscription_state.c.subscription).where(
            subscription_state.c.subscription == subscription
        )
    ).first()
    if exists is None:
        session.execute(
            insert(subscription_state).values(
                subscription=subscription, secret=secrets.token_urlsafe(32), events=0
            )
        )


def set_viewer(session: Session, subscription: str, viewer: dict[str, Any]) -> None:
    ensure_subscription(session, subscription)
    session.execute(
        update(subscription_state)
        .where(subscription_state.c.subscription == subscription)
        .values(viewer=viewer)
    )


def viewer_of(session: Session, subscription: str) -> dict[str, Any] | None:
    value = session.execute(
        select(subscription_state.c.viewer).where(subscription_state.c.subscription == subscription)
    ).scalar()
    return dict(value) if value else None


def set_secret(session: Session, subscription: str, secret: str) -> None:
    ensure_subscription(session, subscription)
    session.execute(
        update(subscription_state)
        .where(subscription_state.c.subscription == subscription)
        .values(secret=secret)
    )


def secret_of(session: Session, subscription: str) -> str | None:
    return session.execute(
        select(subscription_state.c.secret).where(subscription_state.c.subscription == subscription)
    ).scalar()


def secrets_of(session: Session, subscriptions: set[str]) -> dict[str, str]:
    if not subscriptions:
        return {}
    rows = session.execute(
        select(subscription_state.c.subscription, subscription_state.c.secret).where(
            subscription_state.c.subscription.in_(sorted(subscriptions))
        )
    ).all()
    return {s: secret for s, secret in rows}


def next_event_numbers(session: Session, subscription: str, count: int = 1) -> int:
    """The first of ``count`` consecutive numbers of the subscription's event counter, advanced
    in the caller's transaction (the row lock on PostgreSQL keeps concurrent writers from handing
    out the same numbers, until the commit: take them as late as possible)."""
    ensure_subscription(session, subscription)
    last = session.execute(
        update(subscription_state)
        .where(subscription_state.c.subscription == subscription)
        .values(events=subscription_state.c.events + count)
        .returning(subscription_state.c.events)
    ).scalar_one()
    return int(last) - count + 1


def forget_subscription(session: Session, subscription: str) -> None:
    session.execute(
        delete(subscription_state).where(subscription_state.c.subscription == subscription)
    )
