"""The durable inbox: raw message rows, idempotency keys, per-patient ordering locks.

Only SQLAlchemy here; every function works in the caller's transaction. Duplicates meet in the
database (the ``inbox_keys`` primary key), never in a read-then-write: a second process inserting
the same key waits on the index until the first commits, then sees it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import String, bindparam, func, insert, select, text, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.store.inbox_tables import inbox_keys, inbox_messages
from fhir_gateway.store.prebuilt import Prebuilt

__all__ = [
    "Added",
    "InboxMessage",
    "key_hash",
    "add",
    "add_claiming",
    "claim_key",
    "get",
    "lock",
    "finish",
    "mark_duplicate",
    "lock_in_turn",
    "pending_ids",
    "listing",
    "count",
    "lock_patient",
    "ids_with_status",
    "reopen",
]


@dataclass(frozen=True, slots=True)
class InboxMessage:
    id: int
    channel: str
    kind: str
    sender: str | None
    control_id: str | None
    message_key: str | None
    patient_key: str | None
    event: str | None
    peer: str | None
    received_at: datetime
    source_time: datetime | None
    status: str
    answer_code: str | None
    answer: bytes | None
    error: dict[str, Any] | None
    warnings: list[str] | None
    duplicate_of: int | None
    attempts: int
    processed_at: datetime | None
    raw: bytes

    def summary(self) -> dict[str, Any]:
        """The row without its raw bytes and answer, for listings."""
        return {
            "id": self.id,
            "channel": self.channel,
            "kind": self.kind,
            "sender": self.sender,
            "control_id": self.control_id,
            "patient_key": self.patient_key,
            "event": self.event,
            "status": self.status,
            "answer_code": self.answer_code,
            "received_at": clock.to_instant(self.received_at),
            "processed_at": clock.to_instant(self.processed_at) if self.processed_at else None,
            "source_time": clock.to_instant(self.source_time) if self.source_time else None,
            "duplicate_of": self.duplicate_of,
            "attempts": self.attempts,
            "error": self.error,
        }


_MAX_ID = 2**63 - 1  # BIGINT: a larger id names no row (and would overflow the driver)


def _storable_id(message_id: int) -> bool:
    return 0 < message_id <= _MAX_ID


def key_hash(key_text: str) -> str:
    return hashlib.sha256(key_text.encode()).hexdigest()


def _row(row: Any) -> InboxMessage:
    return InboxMessage(
        id=row.id,
        channel=row.channel,
        kind=row.kind,
        sender=row.sender,
        control_id=row.control_id,
        message_key=row.message_key,
        patient_key=row.patient_key,
        event=row.event,
        peer=row.peer,
        received_at=clock.from_db(row.received_at),
        source_time=clock.from_db(row.source_time) if row.source_time else None,
        status=row.status,
        answer_code=row.answer_code,
        answer=row.answer,
        error=row.error,
        warnings=row.warnings,
        duplicate_of=row.duplicate_of,
        attempts=row.attempts,
        processed_at=clock.from_db(row.processed_at) if row.processed_at else None,
        raw=row.raw,
    )


def add(
    session: Session,
    *,
    raw: bytes,
    channel: str,
    kind: str,
    status: str = "received",
    **fields: Any,
) -> int:
    """Store a message as received (or already terminal); returns its id, the receipt order."""
    values = _values(raw, channel, kind, status, fields)
    return int(_add_prebuilt(tuple(values)).run(session, values).scalar_one())


def _add_statement(names: tuple[str, ...], *, whole_row: bool = False) -> Any:
    return (
        insert(inbox_messages)
        .values({name: bindparam(name) for name in names})
        .returning(*(inbox_messages.c if whole_row else [inbox_messages.c.id]))
    )


@cache
def _add_prebuilt(names: tuple[str, ...]) -> Prebuilt:
    return Prebuilt(_add_statement(names))


def _values(raw: bytes, channel: str, kind: str, status: str, fields: dict[str, Any]) -> Any:
    source_time = fields.pop("source_time", None)
    return {
        "raw": raw,
        "channel": channel,
        "kind": kind,
        "status": status,
        "attempts": 0,
        "received_at": clock.to_db(clock.now()),
        "source_time": clock.to_db(source_time) if source_time else None,
        **fields,
    }


@dataclass(frozen=True, slots=True)
class Added:
    """A message recorded by ``add_claiming``: its row, the owner of its key (another id: a
    re-send), and the earliest message of its patient still ``received`` before it (None: none,
    or no patient key), as the recording statement saw them."""

    row: InboxMessage
    owner: int
    waiting: int | None


def add_claiming(
    session: Session, *, raw: bytes, channel: str, kind: str, key_text: str, **fields: Any
) -> Added:
    """``add`` a received message, then ``claim_key`` its ``message_key`` for it. One statement
    on PostgreSQL (the claim a CTE of the insert, the patient's waiting messages a subquery: those
    committed before it); three elsewhere."""
    key = fields["message_key"]
    if session.get_bind().dialect.name != "postgresql":
        mid = add(session, raw=raw, channel=channel, kind=kind, **fields)
        owner = claim_key(session, key, key_text, mid)
        row, first = lock_in_turn(session, mid)
        assert row is not None  # just added
        return Added(row, owner, first if first != mid else None)
    values = _values(raw, channel, kind, "received", fields)
    statement = _add_claiming_statement(tuple(values))
    found = statement.run(session, {**values, "key_text": key_text}).one()
    row = _row(found)
    owner = row.id if found.claimed_by is not None else _owner(session, key)
    return Added(row, owner, found.first_pending)


def claim_key(session: Session, message_key: str, key_text: str, message_id: int) -> int:
    """Make ``message_id`` the owner of ``message_key``; returns the owner (another id: a re-send).

    One INSERT that does nothing on a taken key (no savepoint to recover from a refused one); the
    owner is read only then."""
    claimed = session.execute(
        _claim_statement(session.get_bind().dialect.name),
        {"message_key": message_key, "key_text": key_text, "message_id": message_id},
    ).first()
    return message_id if claimed is not None else _owner(session, message_key)


@cache
def _add_claiming_statement(names: tuple[str, ...]) -> Prebuilt:
    added = _add_statement(names, whole_row=True).cte("added")
    claimed = (
        pg_insert(inbox_keys)
        .from_select(
            ["message_key", "key_text", "message_id"],
            select(
                bindparam("message_key", type_=String),
                bindparam("key_text", type_=String),
                added.c.id,
            ),
        )
        .on_conflict_do_nothing(index_elements=[inbox_keys.c.message_key])
        .returning(inbox_keys.c.message_id)
        .cte("claimed")
    )
    waiting = (  # committed before this statement: the message itself is not among them
        select(func.min(inbox_messages.c.id))
        .where(
            inbox_messages.c.patient_key == bindparam("patient_key"),
            inbox_messages.c.status == "received",
        )
        .scalar_subquery()
        .label("first_pending")
    )
    return Prebuilt(
        select(added, claimed.c.message_id.label("claimed_by"), waiting).select_from(
            added.outerjoin(claimed, true())
        )
    )


def _owner(session: Session, message_key: str) -> int:
    owner = session.execute(
        select(inbox_keys.c.message_id).where(inbox_keys.c.message_key == message_key)
    ).scalar_one()
    return int(owner)


@cache
def _claim_statement(dialect: str) -> Any:
    insert_for = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert_for(inbox_keys)
        .on_conflict_do_nothing(index_elements=[inbox_keys.c.message_key])
        .returning(inbox_keys.c.message_id)
    )


def get(session: Session, message_id: int) -> InboxMessage | None:
    if not _storable_id(message_id):
        return None
    row = _GET.run(session, {"id": message_id}).first()
    return _row(row) if row else None


def lock(session: Session, message_id: int) -> InboxMessage | None:
    """Read a row for update (PostgreSQL row lock; SQLite's writer holds the database)."""
    if not _storable_id(message_id):
        return None
    row = _LOCK.run(session, {"id": message_id}).first()
    return _row(row) if row else None


_GET = Prebuilt(select(inbox_messages).where(inbox_messages.c.id == bindparam("id")))
_LOCK = Prebuilt(
    select(inbox_messages).where(inbox_messages.c.id == bindparam("id")).with_for_update()
)


def lock_in_turn(session: Session, message_id: int) -> tuple[InboxMessage | None, int | None]:
    """``lock``, and in the same statement the id of its patient's earliest message still
    ``received``, received no later than it (None without a patient key, or when none is): the
    one to apply first."""
    if not _storable_id(message_id):
        return None, None
    row = _LOCK_IN_TURN.run(session, {"id": message_id}).first()
    return (_row(row), row.first_pending) if row else (None, None)


def _lock_in_turn() -> Any:
    earlier = inbox_messages.alias("earlier")
    first = (
        select(func.min(earlier.c.id))
        .where(
            earlier.c.patient_key == inbox_messages.c.patient_key,
            earlier.c.status == "received",
            earlier.c.id <= inbox_messages.c.id,
        )
        .scalar_subquery()
        .label("first_pending")
    )
    return (
        select(inbox_messages, first)
        .where(inbox_messages.c.id == bindparam("id"))
        .with_for_update(of=inbox_messages)
    )


# Built once: a statement built anew costs its cache key each time (the better part of a
# short statement's CPU), one kept is keyed once (issue 21: statements prebuilt).
_LOCK_IN_TURN = Prebuilt(_lock_in_turn())


def finish(
    session: Session,
    message_id: int,
    *,
    status: str,
    answer_code: str | None,
    answer: bytes | None,
    error: dict[str, Any] | None = None,
    warnings: list[str] | None = None,
    **fields: Any,
) -> InboxMessage | None:
    """Record a message's outcome; returns its row as it now is."""
    values = {
        "status": status,
        "answer_code": answer_code,
        "answer": answer,
        "error": error,
        "warnings": warnings or None,
        "processed_at": clock.to_db(clock.now()),
        **fields,
    }
    statement = _finish_statement(tuple(fields))
    row = statement.run(session, {"message_id": message_id, **values}).first()
    return _row(row) if row else None


@cache
def _finish_statement(extra: tuple[str, ...]) -> Prebuilt:
    """The UPDATE of ``finish``, built once per set of extra fields."""
    names = ("status", "answer_code", "answer", "error", "warnings", "processed_at", *extra)
    return Prebuilt(
        update(inbox_messages)
        .where(inbox_messages.c.id == bindparam("message_id"))
        .values(
            {
                **{name: bindparam(name) for name in names},
                "attempts": inbox_messages.c.attempts + 1,
            }
        )
        .returning(*inbox_messages.c)
    )


def mark_duplicate(session: Session, message_id: int, original: InboxMessage) -> None:
    session.execute(
        update(inbox_messages)
        .where(inbox_messages.c.id == message_id)
        .values(
            status="duplicate",
            duplicate_of=original.id,
            answer_code=original.answer_code,
            answer=original.answer,
            processed_at=clock.to_db(clock.now()),
        )
    )


def pending_ids(session: Session, *, before: datetime | None = None) -> list[int]:
    stmt = select(inbox_messages.c.id).where(inbox_messages.c.status == "received")
    if before is not None:
        stmt = stmt.where(inbox_messages.c.received_at < clock.to_db(before))
    return [int(i) for i in session.execute(stmt.order_by(inbox_messages.c.id)).scalars()]


def listing(
    session: Session, *, status: str | None = None, limit: int = 50, offset: int = 0
) -> list[InboxMessage]:
    stmt = select(inbox_messages)
    if status:
        stmt = stmt.where(inbox_messages.c.status == status)
    rows = session.execute(
        stmt.order_by(inbox_messages.c.id.desc()).limit(limit).offset(offset)
    ).all()
    return [_row(r) for r in rows]


def count(session: Session, *, status: str | None = None) -> int:
    stmt = select(func.count()).select_from(inbox_messages)
    if status:
        stmt = stmt.where(inbox_messages.c.status == status)
    return int(session.execute(stmt).scalar_one())


def ids_with_status(session: Session, status: str) -> list[int]:
    stmt = (
        select(inbox_messages.c.id)
        .where(inbox_messages.c.status == status)
        .order_by(inbox_messages.c.id)
    )
    return [int(i) for i in session.execute(stmt).scalars()]


def lock_patient(session: Session, patient_key: str) -> None:
    """Serialise the intake of one patient until the transaction ends.

    PostgreSQL: a transaction-scoped advisory lock on the key's hash. SQLite: nothing to do, its
    single writer (BEGIN IMMEDIATE) already serialises every writing transaction.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.sha256(patient_key.encode()).digest()
    _ADVISORY_LOCK.run(session, {"k": int.from_bytes(digest[:8], "big", signed=True)})


_ADVISORY_LOCK = Prebuilt(text("SELECT pg_advisory_xact_lock(:k)"))


def reopen(session: Session, message_id: int, **fields: Any) -> None:
    """Put a message back to ``received`` (a replay), with what re-identifying it found."""
    source_time = fields.pop("source_time", None)
    session.execute(
        update(inbox_messages)
        .where(inbox_messages.c.id == message_id)
        .values(
            status="received",
            duplicate_of=None,
            source_time=clock.to_db(source_time) if source_time else None,
            **fields,
        )
    )
