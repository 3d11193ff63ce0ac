"""security: registered clients, assertion jti, gateway signing key, consent grants

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_clients",
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("organization", sa.String(length=128), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("jwks", sa.JSON(), nullable=True),
        sa.Column("jwks_url", sa.String(length=1024), nullable=True),
        sa.Column("senders", sa.JSON(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_auth_clients")),
    )
    op.create_table(
        "auth_jti",
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("jti", sa.String(length=256), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name=op.f("pk_auth_jti")),
    )
    op.create_index("ix_auth_jti_expires_at", "auth_jti", ["expires_at"])
    op.create_table(
        "gateway_keys",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("private_jwk", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_gateway_keys")),
    )
    op.create_table(
        "consent_grants",
        sa.Column("consent_id", sa.String(length=64), nullable=False),
        sa.Column("organization", sa.String(length=128), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("starts", sa.DateTime(), nullable=True),
        sa.Column("ends", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("consent_id", "organization", name=op.f("pk_consent_grants")),
    )
    op.create_index(
        "ix_consent_grants_patient_org", "consent_grants", ["patient_id", "organization"]
    )


def downgrade() -> None:
    op.drop_index("ix_consent_grants_patient_org", table_name="consent_grants")
    op.drop_table("consent_grants")
    op.drop_table("gateway_keys")
    op.drop_index("ix_auth_jti_expires_at", table_name="auth_jti")
    op.drop_table("auth_jti")
    op.drop_table("auth_clients")
