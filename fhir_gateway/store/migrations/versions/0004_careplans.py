"""care-plan engine: no tables of its own (plans, templates and the partner directory are FHIR
resources in the resource tables); kept so that the revision chain has its place

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
