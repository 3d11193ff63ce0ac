"""durable inbox: raw messages, idempotency keys, source times

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "inbox_messages",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sender", sa.String(length=512), nullable=True),
        sa.Column("control_id", sa.String(length=256), nullable=True),
        sa.Column("message_key", sa.String(length=64), nullable=True),
        sa.Column("patient_key", sa.String(length=512), nullable=True),
        sa.Column("event", sa.String(length=64), nullable=True),
        sa.Column("peer", sa.String(length=256), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("source_time", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("answer_code", sa.String(length=16), nullable=True),
        sa.Column("answer", sa.LargeBinary(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("warnings", sa.JSON(), nullable=True),
        sa.Column("duplicate_of", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("processed_at", sa.DateTime(), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_messages")),
    )
    op.create_index("ix_inbox_messages_status_id", "inbox_messages", ["status", "id"])
    op.create_index(
        "ix_inbox_messages_patient_status", "inbox_messages", ["patient_key", "status", "id"]
    )
    op.create_index("ix_inbox_messages_message_key", "inbox_messages", ["message_key"])
    op.create_table(
        "inbox_keys",
        sa.Column("message_key", sa.String(length=64), nullable=False),
        sa.Column("key_text", sa.Text(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("message_key", name=op.f("pk_inbox_keys")),
    )
    op.create_table(
        "source_times",
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("res_id", sa.String(length=64), nullable=False),
        sa.Column("source_time", sa.DateTime(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("res_type", "res_id", name=op.f("pk_source_times")),
    )


def downgrade() -> None:
    op.drop_table("source_times")
    op.drop_table("inbox_keys")
    op.drop_index("ix_inbox_messages_message_key", table_name="inbox_messages")
    op.drop_index("ix_inbox_messages_patient_status", table_name="inbox_messages")
    op.drop_index("ix_inbox_messages_status_id", table_name="inbox_messages")
    op.drop_table("inbox_messages")
