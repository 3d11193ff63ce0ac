"""sort keys: each index table's per-resource index gains the parameter and the sort column

``_sort=name`` orders each match by ``min(value)`` of its rows of that parameter. The only index
on (res_type, res_id) left the parameter and value to the table, and with equal-looking choices
the databases (SQLite always, PostgreSQL at times) read the (res_type, param, value) index
instead: every row of the parameter, once per match, quadratic (75 s at 12k patients). The
(res_type, res_id, param, <sort column>) index answers each lookup with one seek, and still
serves what the old one did (rewriting a resource's index rows).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_SORT_COLUMNS = {  # index table → the column _sort orders by (store.tables.SORT_COLUMNS)
    "idx_string": "value",
    "idx_token": "code",
    "idx_reference": "target_id",
    "idx_date": "low",
    "idx_number": "value",
    "idx_quantity": "value",
    "idx_uri": "value",
}


def upgrade() -> None:
    for table, column in _SORT_COLUMNS.items():
        op.create_index(f"ix_{table}_sort", table, ["res_type", "res_id", "param", column])
        op.drop_index(f"ix_{table}_resource", table_name=table)
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"ANALYZE {table}")  # without statistics the planner may keep scanning


def downgrade() -> None:
    for table in _SORT_COLUMNS:
        op.create_index(f"ix_{table}_resource", table, ["res_type", "res_id"])
        op.drop_index(f"ix_{table}_sort", table_name=table)
