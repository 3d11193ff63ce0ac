"""The transactional outbox: one row per notification to deliver, every delivery attempt, and the
per-subscription state (signing secret, event counter).

A row is written in the same transaction as the change it announces, so a notification exists
exactly when its change does. ``status`` is ``pending`` until delivered, then ``delivered``; a row
that cannot be delivered within the retry window (or is refused for good) becomes ``dead`` (the
dead letters), and ``replay`` makes it pending again. A row whose ``disclosures`` (the patient data
it discloses and the consent each rests on, kept for the accounting) are no longer permitted when
its turn comes (the consent revoked or expired meanwhile) is ``withdrawn``: never sent.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table, Text

from fhir_gateway.store.tables import JsonDoc, RowId, UtcTime, metadata

__all__ = ["outbox", "outbox_attempts", "subscription_state", "STATUSES"]

STATUSES = ("pending", "delivered", "dead", "withdrawn")

outbox = Table(
    "outbox",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("created_at", UtcTime, nullable=False),
    Column("retry_since", UtcTime, nullable=False),  # start of the retry window (reset by replay)
    Column("channel", String(32), nullable=False),  # rest-hook | message | partner-push
    Column("subscription", String(64), nullable=True),  # Subscription id: secret, event counter
    Column("event_number", BigInteger, nullable=True),
    Column("focus", String(256), nullable=True),  # Type/id/_history/v the notification is about
    Column("method", String(8), nullable=False),
    Column("url", Text, nullable=False),
    Column("headers", JsonDoc, nullable=False),
    Column("content_type", String(128), nullable=True),
    Column("body", LargeBinary, nullable=False),
    Column("disclosures", JsonDoc, nullable=True),  # what it discloses under which consent
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcTime, nullable=False),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_until", UtcTime, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("delivered_at", UtcTime, nullable=True),
    Column("dead_at", UtcTime, nullable=True),
    Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
)

outbox_attempts = Table(
    "outbox_attempts",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("outbox_id", BigInteger, nullable=False),
    Column("number", Integer, nullable=False),
    Column("at", UtcTime, nullable=False),
    Column("worker", String(128), nullable=False),
    Column("http_status", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("outcome", String(16), nullable=False),  # delivered | retry | dead | withdrawn
    Index("ix_outbox_attempts_outbox_id", "outbox_id"),
)

subscription_state = Table(
    "subscription_state",
    metadata,
    Column("subscription", String(64), primary_key=True),
    Column("secret", String(256), nullable=False),
    Column("events", BigInteger, nullable=False),
    Column(
        "viewer", JsonDoc, nullable=True
    ),  # who created it: notifications show what they may see
)
