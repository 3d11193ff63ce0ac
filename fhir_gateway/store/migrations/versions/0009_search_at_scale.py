"""search at scale: index-only, res_id-ordered token and reference lookups; planner statistics

The (res_type, param, code, system) and (res_type, param, target_id, target_type) indexes become
(…, code, res_id, system) and (…, target_id, res_id, target_type): the rows of one code or one
target come in res_id order and carry it, so the criteria of a search intersect inside the
index (a merge, no table visits) and a first page stops after its rows. The (res_type,
last_updated) index of resources gains res_id: a _lastUpdated range needs no table visits either.

On PostgreSQL, extended statistics (most-common combinations) on those columns: the index tables
hold every type and parameter, and per-column statistics, taken as independent, misjudge how many
rows one combination has (a large partner's Tasks by a factor of hundreds), which led the planner
to visit every candidate row. Creating indexes on a large database takes a while (minutes for
tens of millions of index rows) and holds writes meanwhile.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_STATISTICS = {  # name → (table, columns)
    "st_idx_reference_target": ("idx_reference", "res_type, param, target_type, target_id"),
    "st_idx_token_code": ("idx_token", "res_type, param, system, code"),
}
_STATISTICS_TARGET = 1000  # room in the combination lists for every partner and practitioner


def upgrade() -> None:
    op.drop_index("ix_resources_type_updated", table_name="resources")
    op.create_index(
        "ix_resources_type_updated_res_id", "resources", ["res_type", "last_updated", "res_id"]
    )
    op.drop_index("ix_idx_token_code_system", table_name="idx_token")
    op.create_index(
        "ix_idx_token_code_res_id_system",
        "idx_token",
        ["res_type", "param", "code", "res_id", "system"],
    )
    op.drop_index("ix_idx_reference_target_id_target_type", table_name="idx_reference")
    op.create_index(
        "ix_idx_reference_target_id_res_id_target_type",
        "idx_reference",
        ["res_type", "param", "target_id", "res_id", "target_type"],
    )
    if op.get_bind().dialect.name == "postgresql":
        for name, (table, columns) in _STATISTICS.items():
            op.execute(f"CREATE STATISTICS {name} (mcv, dependencies) ON {columns} FROM {table}")
            op.execute(f"ALTER STATISTICS {name} SET STATISTICS {_STATISTICS_TARGET}")
            op.execute(f"ANALYZE {table}")  # the planner has the new statistics from the start


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in _STATISTICS:
            op.execute(f"DROP STATISTICS IF EXISTS {name}")
    op.drop_index("ix_idx_reference_target_id_res_id_target_type", table_name="idx_reference")
    op.create_index(
        "ix_idx_reference_target_id_target_type",
        "idx_reference",
        ["res_type", "param", "target_id", "target_type"],
    )
    op.drop_index("ix_idx_token_code_res_id_system", table_name="idx_token")
    op.create_index(
        "ix_idx_token_code_system", "idx_token", ["res_type", "param", "code", "system"]
    )
    op.drop_index("ix_resources_type_updated_res_id", table_name="resources")
    op.create_index("ix_resources_type_updated", "resources", ["res_type", "last_updated"])
