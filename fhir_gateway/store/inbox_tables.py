"""Tables of the durable inbox: every inbound message raw, its idempotency key, and the source
time of what the intake last wrote to each resource.

    inbox_messages   one row per message received (re-sends too, as ``duplicate`` rows)
    inbox_keys       sender + control id → the first message: the unique key that makes a
                     message apply once, also when two gateway processes receive it at once
    source_times     per resource, the newest message time (EVN-2, else MSH-7; Bundle.timestamp)
                     applied to it: an older replay must not overwrite it
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, LargeBinary, String, Table, Text

from fhir_gateway.store.tables import RowId, UtcTime, metadata

__all__ = ["inbox_messages", "inbox_keys", "source_times", "STATUSES"]

STATUSES = ("received", "processed", "duplicate", "failed")

inbox_messages = Table(
    "inbox_messages",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("channel", String(16), nullable=False),  # mllp | http | fhir
    Column("kind", String(16), nullable=False),  # hl7v2 | fhir-message
    Column("sender", String(512), nullable=True),  # MSH-3|MSH-4, or MessageHeader.source.endpoint
    Column("control_id", String(256), nullable=True),  # MSH-10, or MessageHeader.id
    Column("message_key", String(64), nullable=True),  # sha256 of the idempotency key
    Column("patient_key", String(512), nullable=True),  # orders messages of one patient
    Column("event", String(64), nullable=True),
    Column("peer", String(256), nullable=True),
    Column("received_at", UtcTime, nullable=False),
    Column("source_time", UtcTime, nullable=True),
    Column("status", String(16), nullable=False),
    Column("answer_code", String(16), nullable=True),  # AA | AE | AR, or ok | fatal-error
    Column("answer", LargeBinary, nullable=True),  # the answer sent, re-sent to duplicates
    Column("error", JSON, nullable=True),
    Column("warnings", JSON, nullable=True),
    Column("duplicate_of", BigInteger, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("processed_at", UtcTime, nullable=True),
    Column("raw", LargeBinary, nullable=False),
    Index("ix_inbox_messages_status_id", "status", "id"),
    Index("ix_inbox_messages_patient_status", "patient_key", "status", "id"),
    Index("ix_inbox_messages_message_key", "message_key"),
)

inbox_keys = Table(
    "inbox_keys",
    metadata,
    Column("message_key", String(64), primary_key=True),
    Column("key_text", Text, nullable=False),
    Column("message_id", BigInteger, nullable=False),
)

source_times = Table(
    "source_times",
    metadata,
    Column("res_type", String(64), primary_key=True),
    Column("res_id", String(64), primary_key=True),
    Column("source_time", UtcTime, nullable=False),
    Column("message_id", BigInteger, nullable=True),
)
