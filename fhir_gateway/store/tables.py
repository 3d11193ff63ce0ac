"""SQLAlchemy Core tables: current resources, every version, typed search-index tables.

Timestamps are stored as naive UTC on both databases (SQLite has no zone type); the store converts
at its edges. Resource JSON is JSONB on PostgreSQL and JSON text on SQLite.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = [
    "metadata",
    "JsonDoc",
    "resources",
    "resource_versions",
    "conditional_keys",
    "idx_string",
    "idx_token",
    "idx_reference",
    "idx_date",
    "idx_number",
    "idx_quantity",
    "idx_uri",
    "INDEX_TABLES",
    "search_parameter_state",
    "SORT_COLUMNS",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    }
)

JsonDoc = JSON().with_variant(JSONB(), "postgresql")
RowId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only
UtcTime = DateTime(timezone=False)

resources = Table(
    "resources",
    metadata,
    Column("res_type", String(64), primary_key=True),
    Column("res_id", String(64), primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", UtcTime, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", JsonDoc, nullable=False),
    # res_id too: a _lastUpdated range is read from the index alone (migration 0009)
    Index("ix_resources_type_updated_res_id", "res_type", "last_updated", "res_id"),
)

resource_versions = Table(
    "resource_versions",
    metadata,
    Column("res_type", String(64), primary_key=True),
    Column("res_id", String(64), primary_key=True),
    Column("version_id", Integer, primary_key=True),
    Column("last_updated", UtcTime, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("method", String(8), nullable=False),  # POST | PUT | PATCH | DELETE
    Column("content", JsonDoc, nullable=False),
    Index("ix_resource_versions_type_updated", "res_type", "last_updated"),
    Index("ix_resource_versions_updated", "last_updated"),
)

# One row: the version of the stored SearchParameters, bumped in the transaction that writes one
# (store/search_parameters.py), so every process reloads its registry after that commit only.
search_parameter_state = Table(
    "search_parameter_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)

# Conditional create is race-safe through this unique key, never through read-then-write.
conditional_keys = Table(
    "conditional_keys",
    metadata,
    Column("res_type", String(64), primary_key=True),
    Column("key_hash", String(64), primary_key=True),
    Column("criteria", Text, nullable=False),
    Column("res_id", String(64), nullable=False),
)


def _index_table(
    name: str, *columns: Column[Any], sort: str, indexes: tuple[tuple[str, ...], ...]
) -> Table:
    table = Table(
        name,
        metadata,
        Column("row_id", RowId, primary_key=True, autoincrement=True),
        Column("res_type", String(64), nullable=False),
        Column("res_id", String(64), nullable=False),
        Column("param", String(64), nullable=False),
        *columns,
        info={"sort": sort},
    )
    # One resource's rows (rewritten on every update) and, per parameter, its sort value: _sort
    # looks up min/max(sort) of each match here, one index seek (migration 0013); without the
    # param and sort columns the databases scanned a parameter's whole range once per match.
    Index(f"ix_{name}_sort", table.c.res_type, table.c.res_id, table.c.param, table.c[sort])
    for cols in indexes:
        Index(
            f"ix_{name}_{'_'.join(cols)}",
            table.c.res_type,
            table.c.param,
            *(table.c[c] for c in cols),
        )
    return table


idx_string = _index_table(
    "idx_string",
    Column("value", String(256), nullable=False),  # normalised: case and accents folded
    Column("exact", String(256), nullable=False),  # as written, for :exact
    sort="value",
    indexes=(("value",),),
)

idx_token = _index_table(
    "idx_token",
    Column("system", String(512), nullable=True),
    Column("code", String(256), nullable=True),
    Column("text", String(256), nullable=True),  # normalised display / text, for :text
    # res_id before system: one code's rows come in res_id order (system is still checked in the
    # index), so criteria intersect by merging and a first page stops early (migration 0009).
    sort="code",
    indexes=(("code", "res_id", "system"),),
)

idx_reference = _index_table(
    "idx_reference",
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(64), nullable=True),
    Column("url", String(1024), nullable=True),  # absolute or canonical references
    sort="target_id",
    indexes=(("target_id", "res_id", "target_type"), ("url",)),  # res_id order, as idx_token
)
# Everything that points at one resource, whatever its type or parameter (store.referrers: the
# Part 2 labels a referenced resource passes on); without it, a scan of every reference.
Index("ix_idx_reference_target", idx_reference.c.target_id, idx_reference.c.target_type)

idx_date = _index_table(
    "idx_date",
    Column("low", UtcTime, nullable=False),
    Column("high", UtcTime, nullable=False),
    sort="low",
    indexes=(("low", "high"),),
)

idx_number = _index_table(
    "idx_number",
    Column("value", Float, nullable=False),
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    sort="value",
    indexes=(("value",),),
)

idx_quantity = _index_table(
    "idx_quantity",
    Column("value", Float, nullable=False),
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    Column("system", String(512), nullable=True),
    Column("code", String(128), nullable=True),
    Column("unit", String(128), nullable=True),
    sort="value",
    indexes=(("value",),),
)

idx_uri = _index_table(
    "idx_uri",
    Column("value", String(1024), nullable=False),
    sort="value",
    indexes=(("value",),),
)

INDEX_TABLES = {
    "string": idx_string,
    "token": idx_token,
    "reference": idx_reference,
    "date": idx_date,
    "number": idx_number,
    "quantity": idx_quantity,
    "uri": idx_uri,
}

# The column a _sort on a parameter of each type orders by (indexed per resource and parameter).
SORT_COLUMNS = {kind: table.info["sort"] for kind, table in INDEX_TABLES.items()}
