"""part2_2024: counselling-note grants, and what each outbox row discloses

The 2024 42 CFR Part 2 rule keeps SUD counselling notes apart: a consent grant is either for the
notes only or for everything else (``consent_grants.notes``). A queued notification or push records
the patient data it discloses and the consent each rests on (``outbox.disclosures``): a revoked
consent stops it before it is sent, and a delivered one enters the accounting of disclosures.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("consent_grants") as batch:
        batch.add_column(
            sa.Column("notes", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("disclosures", _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("disclosures")
    with op.batch_alter_table("consent_grants") as batch:
        batch.drop_column("notes")
