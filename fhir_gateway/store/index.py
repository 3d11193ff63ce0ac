"""Write the search index of one resource; rebuild it for all (``fhir-gateway reindex``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, insert, select, tuple_, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fhir_gateway.search.extract import TABLE_COLUMNS, extract
from fhir_gateway.search.registry import Registry, get_registry
from fhir_gateway.store import search_parameters
from fhir_gateway.store.pg_arrays import Bools, Ints, Texts
from fhir_gateway.store.prebuilt import run_sql
from fhir_gateway.store.search_parameters import stored_definitions
from fhir_gateway.store.tables import INDEX_TABLES, resource_versions, resources

__all__ = [
    "write_index",
    "write_version_and_index",
    "insert_new_with_index",
    "insert_many_with_index",
    "update_many_with_index",
    "clear_index",
    "reindex",
    "load_custom_parameters",
]


def write_index(
    session: Session,
    res_type: str,
    res_id: str,
    resource: Mapping[str, Any],
    *,
    replace: bool = True,
) -> None:
    """Replace the index rows of one resource: a DELETE per table the type can use (none with
    ``replace=False``, for a resource just created), then one executemany per table."""
    rows = extract(resource)
    if res_type == "SearchParameter":
        search_parameters.changed(session)
    if replace:
        _clear(session, res_type, res_id, _kinds_for(res_type))
    conn = session.connection()
    for kind, kind_rows in rows.items():
        for row in kind_rows:
            row["res_type"] = res_type
            row["res_id"] = res_id
        conn.execute(_INSERTS[kind], kind_rows)


def write_version_and_index(
    session: Session, version: dict[str, Any], resource: Mapping[str, Any], *, replace: bool
) -> None:
    """The version row of a write and its index rows (``replace``: those of the version before
    go). On PostgreSQL in one statement, one round trip, sent as written (nothing to compile):
    the version INSERT with a data-modifying CTE per index DELETE and INSERT, all on one
    snapshot, so a DELETE never sees the rows the INSERT beside it adds. Elsewhere one
    statement per table."""
    res_type, res_id = version["res_type"], version["res_id"]
    if session.get_bind().dialect.name != "postgresql":
        session.connection().execute(_INSERT_VERSION, version)
        write_index(session, res_type, res_id, resource, replace=replace)
        return
    rows = extract(resource)
    if res_type == "SearchParameter":
        search_parameters.changed(session)
    parts: list[str] = []
    params: list[Any] = []
    for kind in sorted(_kinds_for(res_type)) if replace else ():
        parts.append(f"d_{kind} AS ({_PG_DELETE[kind]})")
        params += (res_type, res_id)
    for kind, kind_rows in sorted(rows.items()):
        if not kind_rows:
            continue
        # one JSON array of the rows: the text stays the same whatever the number of rows,
        # so the driver prepares it once and the server plans it once
        parts.append(f"i_{kind} AS ({_PG_INSERT[kind]})")
        params += (res_type, res_id, _rows_json(kind, kind_rows))
    params += [version[c] for c in _VERSION_COLUMNS[:-1]]
    params.append(orjson.dumps(version["content"]).decode())
    sql = ("WITH " + ", ".join(parts) + " " if parts else "") + _PG_INSERT_VERSION
    run_sql(session, sql, tuple(params))  # no SQL to compile


def insert_new_with_index(
    session: Session, version: dict[str, Any], resource: Mapping[str, Any]
) -> bool:
    """PostgreSQL: a new resource's current row, its version 1 and its index rows in one
    statement. The current row goes in unless its key exists (ON CONFLICT DO NOTHING: the
    transaction stays usable), the other rows only with it; False when the key existed."""
    res_type, res_id = version["res_type"], version["res_id"]
    rows = extract(resource)
    if res_type == "SearchParameter":
        search_parameters.changed(session)
    content = orjson.dumps(version["content"]).decode()
    current = [version[c] for c in _VERSION_COLUMNS[:-2]]
    parts = ["r AS (" + _PG_INSERT_CURRENT + ")"]
    params: list[Any] = [*current, content]
    for kind, kind_rows in sorted(rows.items()):
        if kind_rows:
            parts.append(f"i_{kind} AS ({_PG_INSERT[kind]} WHERE EXISTS (SELECT FROM r))")
            params += (res_type, res_id, _rows_json(kind, kind_rows))
    parts.append("v AS (" + _PG_INSERT_VERSION_WITH + ")")
    params += [*current, version["method"], content]
    sql = "WITH " + ", ".join(parts) + " SELECT count(*) FROM r"
    return bool(run_sql(session, sql, tuple(params))[0][0])


def insert_many_with_index(
    session: Session, versions: list[dict[str, Any]], contents: list[Mapping[str, Any]]
) -> set[tuple[str, str]]:
    """Several new resources (version 1 each) with their index rows, as many ``insert_new_with_index``
    calls would write them, but one multi-row statement per table: on PostgreSQL one statement in
    all (a CTE per table, its rows as arrays), elsewhere one executemany per table. Returns the
    keys that existed already: those resources got no row at all (ON CONFLICT DO NOTHING: the
    others' current rows still go in; elsewhere nothing more after them: roll back)."""
    index_rows = _index_rows_of(session, versions, contents)
    if session.get_bind().dialect.name == "postgresql":
        return _pg_insert_many(session, versions, index_rows)
    return _insert_many(session, versions, index_rows)


def _pg_insert_many(
    session: Session, versions: list[dict[str, Any]], index_rows: dict[str, list[dict[str, Any]]]
) -> set[tuple[str, str]]:
    contents, columns = _pg_version_columns(versions)
    parts = ["r AS (" + _PG_INSERT_CURRENT_MANY + ")"]
    params: list[Any] = [*columns[:5], contents]
    return _pg_run_many(session, versions, parts, params, index_rows, columns, contents)


# The version columns but content, as arrays of their type (store/pg_arrays.py).
_PG_ARRAYS = {
    "res_type": Texts,
    "res_id": Texts,
    "version_id": Ints,
    "deleted": Bools,
    "method": Texts,
}


def _pg_version_columns(versions: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """The contents as JSON text and the other version columns, each one array."""
    contents = Texts(orjson.dumps(v["content"]).decode() for v in versions)
    columns = [_PG_ARRAYS.get(c, list)(v[c] for v in versions) for c in _VERSION_COLUMNS[:-1]]
    return contents, columns


def _pg_run_many(
    session: Session,
    versions: list[dict[str, Any]],
    parts: list[str],
    params: list[Any],
    index_rows: dict[str, list[dict[str, Any]]],
    columns: list[list[Any]],
    contents: list[str],
) -> set[tuple[str, str]]:
    """The statement of a bulk write after its current-row part (CTE ``r``): the index rows and
    the versions of the rows ``r`` wrote; returns the keys it did not write."""
    for kind, kind_rows in sorted(index_rows.items()):
        if kind_rows:
            parts.append(f"i_{kind} AS ({_PG_INSERT_MANY[kind]})")
            params.append(_rows_json(kind, kind_rows))
    parts.append("v AS (" + _PG_INSERT_VERSION_MANY + ")")
    params += [*columns, contents]
    sql = "WITH " + ", ".join(parts) + " SELECT res_type, res_id FROM r"
    written = {tuple(row) for row in run_sql(session, sql, tuple(params))}
    return {(v["res_type"], v["res_id"]) for v in versions} - written


_SQLITE_INSERT_NEW = (
    sqlite_insert(resources)
    .on_conflict_do_nothing()
    .returning(resources.c.res_type, resources.c.res_id)
)


def _insert_many(
    session: Session, versions: list[dict[str, Any]], index_rows: dict[str, list[dict[str, Any]]]
) -> set[tuple[str, str]]:
    conn = session.connection()
    current = [{k: v for k, v in version.items() if k != "method"} for version in versions]
    # one multi-row INSERT … ON CONFLICT DO NOTHING RETURNING: what went in, without a read first
    written = {(t, i) for t, i in conn.execute(_SQLITE_INSERT_NEW, current)}
    taken = {(v["res_type"], v["res_id"]) for v in versions} - written
    if taken:
        return taken  # the others went in: roll back, as after any failed write
    conn.execute(_INSERT_VERSION, versions)
    for kind, kind_rows in index_rows.items():
        if kind_rows:
            conn.execute(_INSERTS[kind], kind_rows)
    return set()


def update_many_with_index(
    session: Session,
    versions: list[dict[str, Any]],
    contents: list[Mapping[str, Any]],
    before: list[int],
) -> set[tuple[str, str]]:
    """Several existing resources replaced, as many ``update_resource`` writes would leave them:
    the current row (only where it is still at version ``before[i]``), a version row, and the
    index rows of the version before replaced. On PostgreSQL one statement (an UPDATE … FROM
    arrays, then a CTE per index DELETE and INSERT and the versions, all on one snapshot),
    elsewhere one executemany per table. Returns the keys whose current row had moved on (then
    roll back, as after any failed write: on PostgreSQL those got nothing, the others all their
    rows; elsewhere the others' current rows changed and nothing more went in)."""
    index_rows = _index_rows_of(session, versions, contents)
    kinds = set().union(*(_kinds_for(t) for t in {v["res_type"] for v in versions}))
    if session.get_bind().dialect.name == "postgresql":
        return _pg_update_many(session, versions, before, index_rows, kinds)
    return _update_many(session, versions, before, index_rows, kinds)


def _index_rows_of(
    session: Session, versions: list[dict[str, Any]], contents: list[Mapping[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    index_rows: dict[str, list[dict[str, Any]]] = {}
    for version, content in zip(versions, contents, strict=True):
        if version["res_type"] == "SearchParameter":
            search_parameters.changed(session)
        for kind, kind_rows in extract(content).items():
            for row in kind_rows:
                row["res_type"], row["res_id"] = version["res_type"], version["res_id"]
            index_rows.setdefault(kind, []).extend(kind_rows)
    return index_rows


def _pg_update_many(
    session: Session,
    versions: list[dict[str, Any]],
    before: list[int],
    index_rows: dict[str, list[dict[str, Any]]],
    kinds: set[str],
) -> set[tuple[str, str]]:
    contents, columns = _pg_version_columns(versions)
    parts = ["r AS (" + _PG_UPDATE_CURRENT_MANY + ")"]
    params: list[Any] = [*columns[:2], Ints(before), columns[2], columns[3], contents]
    parts += (f"d_{kind} AS ({_PG_DELETE_MANY[kind]})" for kind in sorted(kinds))
    return _pg_run_many(session, versions, parts, params, index_rows, columns, contents)


# A current row replaced, only while still at the version read (b_version). Built once, as the
# statements below (building SQLAlchemy statements per write cost more than running them).
UPDATE_CURRENT = (
    update(resources)
    .where(
        resources.c.res_type == bindparam("b_type"),
        resources.c.res_id == bindparam("b_id"),
        resources.c.version_id == bindparam("b_version"),
    )
    .values(
        version_id=bindparam("version_id"),
        last_updated=bindparam("last_updated"),
        deleted=bindparam("deleted"),
        content=bindparam("content"),
    )
)


def _update_many(
    session: Session,
    versions: list[dict[str, Any]],
    before: list[int],
    index_rows: dict[str, list[dict[str, Any]]],
    kinds: set[str],
) -> set[tuple[str, str]]:
    conn = session.connection()
    result = conn.execute(
        UPDATE_CURRENT,
        [
            {
                "b_type": v["res_type"],
                "b_id": v["res_id"],
                "b_version": was,
                **{c: v[c] for c in ("version_id", "last_updated", "deleted", "content")},
            }
            for v, was in zip(versions, before, strict=True)
        ],
    )
    if result.rowcount != len(versions):  # a concurrent writer won (SQLite has no row locks)
        return _not_at(session, versions)
    conn.execute(_INSERT_VERSION, versions)
    keys = [{"b_type": v["res_type"], "b_id": v["res_id"]} for v in versions]
    for kind in sorted(kinds):
        conn.execute(_DELETES[kind], keys)
    for kind, kind_rows in index_rows.items():
        if kind_rows:
            conn.execute(_INSERTS[kind], kind_rows)
    return set()


def _not_at(session: Session, versions: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """The keys whose current row is not the one just written (another write's: it may carry
    the same version number, so the content tells)."""
    keys = [(v["res_type"], v["res_id"]) for v in versions]
    stored = {
        (row.res_type, row.res_id): row.content
        for row in session.connection().execute(
            select(resources.c.res_type, resources.c.res_id, resources.c.content).where(
                tuple_(resources.c.res_type, resources.c.res_id).in_(keys)
            )
        )
    }
    return {key for key, v in zip(keys, versions, strict=True) if stored.get(key) != v["content"]}


def _pg_type(column: Any) -> str:
    python = column.type.python_type
    return {float: "float8", datetime: "timestamp"}.get(python, "text")


def _record(kind: str, *, keyed: bool) -> str:
    """The row type of a kind's index rows in JSON (``json_to_recordset``): its columns, with
    res_type and res_id first where the rows carry them."""
    table = INDEX_TABLES[kind]
    columns = (["res_type", "res_id"] if keyed else []) + list(TABLE_COLUMNS[kind])
    return ", ".join(
        f'"{c}" {"text" if c in ("res_type", "res_id") else _pg_type(table.c[c])}' for c in columns
    )


# The index rows of a write go to PostgreSQL as one JSON array per table, read there by
# json_to_recordset: orjson writes it in C, where psycopg dumped each element of a column array
# in Python (a first-stay discharge's ~470 rows: ~5 ms of its CPU). Names, not positions, tie a
# value to its column; the rows' other keys are ignored.
_FLOAT_COLUMNS = {
    kind: tuple(c for c in TABLE_COLUMNS[kind] if _pg_type(table.c[c]) == "float8")
    for kind, table in INDEX_TABLES.items()
}
_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _rows_json(kind: str, rows: list[dict[str, Any]]) -> str:
    """A kind's index rows as a JSON array: naive UTC datetimes in ISO form (timestamp input);
    a float that JSON has no number for (orjson would write null) as the text float8 reads."""
    floats = _FLOAT_COLUMNS[kind]
    if floats:
        rows = [{**row, **{c: _json_float(row[c]) for c in floats}} for row in rows]
    return orjson.dumps(rows).decode()


def _json_float(value: Any) -> Any:
    if value is None:
        return None
    value = float(value)
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else _NON_FINITE[value]


_PG_DELETE = {
    kind: f"DELETE FROM {table.name} WHERE res_type = %s AND res_id = %s"
    for kind, table in INDEX_TABLES.items()
}
_PG_INSERT = {
    kind: (
        f"INSERT INTO {table.name} (res_type, res_id, {', '.join(TABLE_COLUMNS[kind])}) "
        f"SELECT %s, %s, u.* FROM json_to_recordset(%s::json) AS u({_record(kind, keyed=False)})"
    )
    for kind, table in INDEX_TABLES.items()
}

_VERSION_COLUMNS = (
    "res_type",
    "res_id",
    "version_id",
    "last_updated",
    "deleted",
    "method",
    "content",
)
_PG_INSERT_VERSION = (
    f"INSERT INTO {resource_versions.name} ({', '.join(_VERSION_COLUMNS)}) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)"
)
_PG_INSERT_CURRENT = (
    f"INSERT INTO {resources.name} (res_type, res_id, version_id, last_updated, deleted, content)"
    " VALUES (%s, %s, %s, %s, %s, %s::jsonb) ON CONFLICT DO NOTHING RETURNING 1"
)
_PG_INSERT_VERSION_WITH = (  # only beside the current row (r) it belongs to
    f"INSERT INTO {resource_versions.name} ({', '.join(_VERSION_COLUMNS)}) "
    "SELECT %s, %s, %s::int, %s::timestamp, %s::bool, %s, %s::jsonb WHERE EXISTS (SELECT FROM r)"
)
_INSERT_VERSION = insert(resource_versions)
# The multi-row forms: each column one array (unnest); index and version rows go in only beside
# the current row they belong to (r), as in the single-resource statement. Their arrays are sent
# in binary (%b): the text form escapes every quote of every JSON document in Python, which cost
# more than the rest of the statement.
_PG_INSERT_CURRENT_MANY = (
    f"INSERT INTO {resources.name} (res_type, res_id, version_id, last_updated, deleted, content)"
    " SELECT * FROM unnest(%b::text[], %b::text[], %b::int[], %b::timestamp[], %b::bool[],"
    " %b::jsonb[]) ON CONFLICT DO NOTHING RETURNING res_type, res_id"
)
_PG_INSERT_MANY = {
    kind: (
        f"INSERT INTO {table.name} (res_type, res_id, {', '.join(TABLE_COLUMNS[kind])}) "
        f"SELECT u.* FROM json_to_recordset(%s::json) AS u({_record(kind, keyed=True)})"
        " WHERE EXISTS (SELECT FROM r WHERE r.res_type = u.res_type AND r.res_id = u.res_id)"
    )
    for kind, table in INDEX_TABLES.items()
}
# The current rows of an update, each only while still at the version read (b_version); the
# index and version rows of the others (r) go in beside them.
_PG_UPDATE_CURRENT_MANY = (
    f"UPDATE {resources.name} AS t SET version_id = n.version_id,"
    " last_updated = n.last_updated, deleted = false, content = n.content"
    " FROM unnest(%b::text[], %b::text[], %b::int[], %b::int[], %b::timestamp[], %b::jsonb[])"
    " AS n(res_type, res_id, b_version, version_id, last_updated, content)"
    " WHERE t.res_type = n.res_type AND t.res_id = n.res_id AND t.version_id = n.b_version"
    " RETURNING t.res_type, t.res_id"
)
_PG_DELETE_MANY = {  # on the statement's snapshot: never the rows its INSERTs add
    kind: f"DELETE FROM {table.name} WHERE (res_type, res_id) IN (SELECT res_type, res_id FROM r)"
    for kind, table in INDEX_TABLES.items()
}
_PG_INSERT_VERSION_MANY = (
    f"INSERT INTO {resource_versions.name} ({', '.join(_VERSION_COLUMNS)}) "
    "SELECT u.* FROM unnest(%b::text[], %b::text[], %b::int[], %b::timestamp[], %b::bool[],"
    f" %b::text[], %b::jsonb[]) AS u({', '.join(_VERSION_COLUMNS)})"
    " WHERE EXISTS (SELECT FROM r WHERE r.res_type = u.res_type AND r.res_id = u.res_id)"
)


def clear_index(session: Session, res_type: str, res_id: str) -> None:
    """Remove every index row of one resource (on delete)."""
    if res_type == "SearchParameter":
        search_parameters.changed(session)
    _clear(session, res_type, res_id, INDEX_TABLES)


# Built once (see repository: building statements per write cost more than running them).
_INSERTS = {kind: insert(table) for kind, table in INDEX_TABLES.items()}
_DELETES = {
    kind: delete(table).where(
        table.c.res_type == bindparam("b_type"), table.c.res_id == bindparam("b_id")
    )
    for kind, table in INDEX_TABLES.items()
}


def _clear(session: Session, res_type: str, res_id: str, kinds: Iterable[str]) -> None:
    conn = session.connection()
    for kind in kinds:
        conn.execute(_DELETES[kind], {"b_type": res_type, "b_id": res_id})


def _kinds_for(res_type: str) -> set[str]:
    # Only the tables this type's parameters write to; "token" also holds Reference.identifier.
    kinds = {p.type for p in get_registry().for_type(res_type).values() if p.type in INDEX_TABLES}
    if "reference" in kinds:
        kinds.add("token")
    return kinds


def load_custom_parameters(session: Session, registry: Registry | None = None) -> int:
    """Put the registry at the SearchParameter resources stored through the API (those deleted
    since are dropped); returns how many are stored."""
    stored = stored_definitions(session.connection())
    (registry or get_registry()).replace_stored(stored)
    return len(stored)


@contextmanager
def _unit(session_factory: Callable[[], Any]) -> Iterator[Session]:
    """One transaction from a ``sessionmaker`` or from ``Database.session`` (already transactional)."""
    made = session_factory()
    if isinstance(made, Session):
        with made as session, session.begin():
            yield session
    else:
        with made as session:
            yield session


def reindex(
    session_factory: Callable[[], Any],
    *,
    resource_type: str | None = None,
    batch: int = 500,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Rebuild the index of every current resource (of one type); returns how many were indexed.

    Works in keyset-ordered batches, one transaction each, so it can run beside a live server;
    ``on_batch(n)`` hears of each batch done (a progress bar).
    """
    with _unit(session_factory) as session:
        load_custom_parameters(session)
    done = 0
    last: tuple[str, str] = ("", "")
    while True:
        with _unit(session_factory) as session:
            query = (
                select(resources.c.res_type, resources.c.res_id, resources.c.content)
                .where(resources.c.deleted.is_(False))
                .where(
                    (resources.c.res_type > last[0])
                    | ((resources.c.res_type == last[0]) & (resources.c.res_id > last[1]))
                )
                .order_by(resources.c.res_type, resources.c.res_id)
                .limit(batch)
            )
            if resource_type is not None:
                query = query.where(resources.c.res_type == resource_type)
            chunk = session.execute(query).all()
            for res_type, res_id, content in chunk:
                clear_index(session, res_type, res_id)  # also rows of parameters since removed
                write_index(session, res_type, res_id, content, replace=False)
        if not chunk:
            return done
        done += len(chunk)
        if on_batch is not None:
            on_batch(len(chunk))
        last = (chunk[-1][0], chunk[-1][1])
