"""search_parameter_state: the version of the stored SearchParameters

A SearchParameter stored through the API was added to a process-wide registry before its
transaction committed: a rollback left it accepted, a restart or another process forgot it. Each
write of one now bumps this version in its own transaction; every process reloads its registry
when the version it loaded is no longer current (store/search_parameters.py).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "search_parameter_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_parameter_state")),
    )
    # Version 1: a database that already holds SearchParameters makes every process load them.
    op.bulk_insert(table, [{"id": 1, "version": 1}])


def downgrade() -> None:
    op.drop_table("search_parameter_state")
