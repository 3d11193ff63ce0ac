"""referrers index: every reference to one resource, whatever the referring type or parameter

``store.referrers.referencing`` (the Part 2 labels a referenced resource passes on to what points
at it) filtered idx_reference on the target alone, which no index served: a scan of every
reference row per labelled write, which grew with the store.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_idx_reference_target", "idx_reference", ["target_id", "target_type"])


def downgrade() -> None:
    op.drop_index("ix_idx_reference_target", table_name="idx_reference")
