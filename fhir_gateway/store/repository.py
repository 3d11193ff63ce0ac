"""Current resources and their versions: create, read, update, delete, history.

Only SQLAlchemy here. Every write stores a new version row, keeps ``meta`` true and refreshes the
search index in the caller's transaction; committing is the service's business.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Any, cast

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    CursorResult,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.errors import Conflict, PreconditionFailed
from fhir_gateway.store import index as search_index
from fhir_gateway.store.db import Database
from fhir_gateway.store.prebuilt import Prebuilt
from fhir_gateway.store.tables import conditional_keys, resource_versions, resources
from fhir_gateway.store.transaction_memo import note_written

__all__ = [
    "UNREAD",
    "StoredResource",
    "RawResource",
    "new_id",
    "read",
    "read_raw",
    "read_many",
    "versions_of",
    "vread",
    "create_resource",
    "create_many",
    "read_keys",
    "claim_conditional_keys",
    "update_resource",
    "update_many",
    "delete_resource",
    "history",
    "claim_conditional_key",
    "same_content",
]


@dataclass(frozen=True, slots=True)
class StoredResource:
    res_type: str
    res_id: str
    version_id: int
    last_updated: datetime  # aware UTC
    deleted: bool
    content: dict[str, Any]
    method: str = "PUT"

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'

    @property
    def relative(self) -> str:
        return f"{self.res_type}/{self.res_id}"


@dataclass(frozen=True, slots=True)
class RawResource:
    """A current resource as stored bytes: the read path never parses or re-validates."""

    version_id: int
    last_updated: datetime
    deleted: bool
    body: bytes


UNREAD = object()  # update_resource: the caller did not read the current row


def new_id() -> str:
    return str(uuid.uuid4())


def _row_to_stored(row: Any, method: str = "PUT") -> StoredResource:
    return StoredResource(
        res_type=row.res_type,
        res_id=row.res_id,
        version_id=row.version_id,
        last_updated=clock.from_db(row.last_updated),
        deleted=row.deleted,
        content=row.content,
        method=getattr(row, "method", method),
    )


_READ = select(resources).where(
    resources.c.res_type == bindparam("res_type"), resources.c.res_id == bindparam("res_id")
)
_READ_FOR_UPDATE = _READ.with_for_update()


def read(
    session: Session, res_type: str, res_id: str, *, for_update: bool = False
) -> StoredResource | None:
    stmt = _READ_FOR_UPDATE_PREBUILT if for_update else _READ_PREBUILT
    row = stmt.run(session, {"res_type": res_type, "res_id": res_id}).first()
    return _row_to_stored(row) if row else None


_READ_PREBUILT = Prebuilt(_READ)
_READ_FOR_UPDATE_PREBUILT = Prebuilt(_READ_FOR_UPDATE)


def read_many(session: Session, res_type: str, res_ids: list[str]) -> list[StoredResource]:
    """The current rows of ``res_ids`` (those that exist), in the order given: one query."""
    by_id: dict[str, StoredResource] = {}
    for start in range(0, len(res_ids), 1000):  # within any database's limit of bound values
        chunk = res_ids[start : start + 1000]
        params = {"res_type": res_type, **{f"i{n}": i for n, i in enumerate(chunk)}}
        rows = _read_many(len(chunk)).run(session, params)
        by_id.update((row.res_id, _row_to_stored(row)) for row in rows)
    return [by_id[i] for i in res_ids if i in by_id]


@lru_cache(maxsize=128)
def _read_many(count: int) -> Prebuilt:
    """The read of ``count`` ids (i0, i1 …) of one type, built once per count."""
    ids: list[Any] = [bindparam(f"i{n}") for n in range(count)]
    return Prebuilt(
        select(resources).where(
            resources.c.res_type == bindparam("res_type"), resources.c.res_id.in_(ids)
        )
    )


def versions_of(
    session: Session, res_type: str, res_ids: list[str]
) -> dict[str, list[StoredResource]]:
    """Every version of each of ``res_ids`` (those that exist), newest first as ``history`` orders
    them: one query per 1,000 ids."""
    found: dict[str, list[StoredResource]] = {}
    for start in range(0, len(res_ids), 1000):  # within any database's limit of bound values
        rows = session.execute(
            select(resource_versions)
            .where(
                resource_versions.c.res_type == res_type,
                resource_versions.c.res_id.in_(res_ids[start : start + 1000]),
            )
            .order_by(
                resource_versions.c.res_id,
                resource_versions.c.last_updated.desc(),
                resource_versions.c.version_id.desc(),
            )
        ).all()
        for row in rows:
            found.setdefault(row.res_id, []).append(_row_to_stored(row))
    return found


# Built once: the read-by-id path is the hottest there is. The body comes back as the stored
# JSON text (no parse).
_READ_RAW = select(
    resources.c.version_id,
    resources.c.last_updated,
    resources.c.deleted,
    type_coerce(resources.c.content, Text),
).where(resources.c.res_type == bindparam("res_type"), resources.c.res_id == bindparam("res_id"))


_READ_RAW_PREBUILT = Prebuilt(_READ_RAW)


def read_raw(
    session: Session | Connection | Database, res_type: str, res_id: str
) -> RawResource | None:
    """The current row's bytes; given the Database, in one statement on a DBAPI connection."""
    params = {"res_type": res_type, "res_id": res_id}
    if isinstance(session, Database):
        row = session.fetch_one(_READ_RAW_PREBUILT, params)
    else:
        row = session.execute(_READ_RAW, params).first()
    if row is None:
        return None
    version_id, last_updated, deleted, text = row
    raw = text.encode() if isinstance(text, str) else orjson.dumps(text)
    return RawResource(version_id, clock.from_db(last_updated), bool(deleted), raw)


def vread(session: Session, res_type: str, res_id: str, version_id: int) -> StoredResource | None:
    row = session.execute(
        select(resource_versions).where(
            resource_versions.c.res_type == res_type,
            resource_versions.c.res_id == res_id,
            resource_versions.c.version_id == version_id,
        )
    ).first()
    return _row_to_stored(row) if row else None


def _stamp(
    resource: dict[str, Any], res_id: str, version_id: int, when: datetime
) -> dict[str, Any]:
    doc = dict(resource)
    doc["id"] = res_id
    meta = dict(doc.get("meta") or {})
    meta["versionId"] = str(version_id)
    meta["lastUpdated"] = clock.to_instant(when)
    doc["meta"] = meta
    return doc


def _without_version_meta(resource: dict[str, Any]) -> dict[str, Any]:
    doc = dict(resource)
    meta = {
        k: v for k, v in (doc.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")
    }
    if meta:
        doc["meta"] = meta
    else:
        doc.pop("meta", None)
    return doc


def same_content(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal but for meta.versionId/lastUpdated: such an update makes no new version."""
    return _without_version_meta(a) == _without_version_meta(b)


# The write path's statements, built once: building SQLAlchemy statements per call cost more than
# running them. Values travel as parameters.
_INSERT_VERSION = insert(resource_versions)
_UPDATE_CURRENT = search_index.UPDATE_CURRENT


@cache
def _insert_new_statement(dialect: str, table: Table) -> Any:
    insert_for = pg_insert if dialect == "postgresql" else sqlite_insert
    # RETURNING says whether the row went in (psycopg's rowcount for this statement is -1)
    return insert_for(table).on_conflict_do_nothing().returning(table.c.res_type)


def _insert_new(session: Session, table: Table, row: dict[str, Any]) -> bool:
    """INSERT unless the key exists (then False): ON CONFLICT DO NOTHING on both databases,
    cheaper than a savepoint around an insert that may fail, and the transaction stays usable."""
    stmt = _insert_new_statement(session.get_bind().dialect.name, table)
    return session.connection().execute(stmt, row).first() is not None


def _write_version(session: Session, stored: StoredResource) -> None:
    session.connection().execute(_INSERT_VERSION, _version_row(stored))


def _version_row(stored: StoredResource) -> dict[str, Any]:
    return {
        "res_type": stored.res_type,
        "res_id": stored.res_id,
        "version_id": stored.version_id,
        "last_updated": clock.to_db(stored.last_updated),
        "deleted": stored.deleted,
        "method": stored.method,
        "content": stored.content,
    }


def create_resource(
    session: Session,
    resource: dict[str, Any],
    *,
    res_id: str | None = None,
    method: str = "POST",
) -> StoredResource:
    """Insert a new resource (server id unless ``res_id`` is given); 409 if that id exists."""
    res_type = resource["resourceType"]
    res_id = res_id or new_id()
    when = clock.now()
    doc = _stamp(resource, res_id, 1, when)
    stored = StoredResource(res_type, res_id, 1, when, False, doc, method)
    note_written(session, (res_type,))
    if session.get_bind().dialect.name == "postgresql":  # all its rows in one statement
        if not search_index.insert_new_with_index(session, _version_row(stored), doc):
            raise Conflict(f"{res_type}/{res_id} already exists")
        return stored
    row = {
        "res_type": res_type,
        "res_id": res_id,
        "version_id": 1,
        "last_updated": clock.to_db(when),
        "deleted": False,
        "content": doc,
    }
    if not _insert_new(session, resources, row):
        raise Conflict(f"{res_type}/{res_id} already exists")
    search_index.write_version_and_index(session, _version_row(stored), doc, replace=False)
    return stored


def create_many(
    session: Session,
    resources_: list[dict[str, Any]],
    *,
    method: str = "PUT",
    methods: list[str] | None = None,
) -> list[StoredResource]:
    """Insert new resources under the ids they carry, each as ``create_resource`` would (same
    current, version and index rows), in one multi-row statement per table; 409 when one of the
    ids exists (the others' rows may have gone in: roll back, as after any failed write).
    ``methods``: each one's, as the history records it (else ``method`` for all)."""
    when = clock.now()
    stored = [
        StoredResource(r["resourceType"], r["id"], 1, when, False, _stamp(r, r["id"], 1, when), m)
        for r, m in zip(resources_, methods or [method] * len(resources_), strict=True)
    ]
    if not stored:
        return []
    note_written(session, {s.res_type for s in stored})
    taken = search_index.insert_many_with_index(
        session, [_version_row(s) for s in stored], [s.content for s in stored]
    )
    if taken:
        names = ", ".join(sorted(f"{t}/{i}" for t, i in taken))
        raise Conflict(f"{names} already exist{'s' if len(taken) == 1 else ''}")
    return stored


def read_keys(
    session: Session, keys: list[tuple[str, str]], *, for_update: bool = False
) -> dict[tuple[str, str], StoredResource]:
    """The current rows of these (type, id) keys that exist, in one query (per 500 keys)."""
    found: dict[tuple[str, str], StoredResource] = {}
    for start in range(0, len(keys), 500):  # within any database's limit of bound values
        part = keys[start : start + 500]
        params = {
            f"{k}{n}": v for n, key in enumerate(part) for k, v in zip("ti", key, strict=True)
        }
        for row in _read_keys(len(part), for_update).run(session, params):
            found[(row.res_type, row.res_id)] = _row_to_stored(row)
    return found


@lru_cache(maxsize=128)
def _read_keys(count: int, for_update: bool) -> Prebuilt:
    """The read of ``count`` keys (t0, i0, t1, i1 …), built once per count."""
    keys = [tuple_(bindparam(f"t{n}"), bindparam(f"i{n}")) for n in range(count)]
    statement = select(resources).where(tuple_(resources.c.res_type, resources.c.res_id).in_(keys))
    return Prebuilt(statement.with_for_update() if for_update else statement)


def update_resource(
    session: Session,
    resource: dict[str, Any],
    res_id: str,
    *,
    if_match: int | None = None,
    method: str = "PUT",
    current: StoredResource | None | object = UNREAD,
) -> tuple[StoredResource, bool]:
    """Replace a resource; create it under ``res_id`` if absent. Returns (stored, created).

    An update that changes nothing but meta's version fields keeps the current version, so a
    re-sent message or an idempotent PATCH leaves history alone. A caller that has just read the
    current row passes it as ``current``: the write is still guarded (the UPDATE matches that
    version only; the INSERT fails on an id taken meanwhile), so it need not be read twice.
    """
    res_type = resource["resourceType"]
    if current is UNREAD:
        current = read(session, res_type, res_id, for_update=True)
    assert current is None or isinstance(current, StoredResource)
    if if_match is not None and (
        current is None or current.deleted or current.version_id != if_match
    ):
        have = "none" if current is None or current.deleted else current.version_id
        raise PreconditionFailed(
            f"If-Match version {if_match} does not match current version {have} of {res_type}/{res_id}"
        )
    if current is None:
        return create_resource(session, resource, res_id=res_id, method=method), True
    if not current.deleted and same_content(current.content, resource):
        return current, False
    version = current.version_id + 1
    when = clock.now()
    doc = _stamp(resource, res_id, version, when)
    note_written(session, (res_type,))
    result = session.connection().execute(
        _UPDATE_CURRENT,
        {
            "b_type": res_type,
            "b_id": res_id,
            "b_version": current.version_id,
            "version_id": version,
            "last_updated": clock.to_db(when),
            "deleted": False,
            "content": doc,
        },
    )
    if result.rowcount != 1:  # a concurrent writer won (SQLite has no row locks to wait on)
        raise Conflict(f"{res_type}/{res_id} was changed concurrently; retry")
    stored = StoredResource(res_type, res_id, version, when, False, doc, method)
    search_index.write_version_and_index(session, _version_row(stored), doc, replace=True)
    return stored, current.deleted


def update_many(
    session: Session, changes: list[tuple[dict[str, Any], StoredResource]], *, method: str = "PUT"
) -> list[tuple[StoredResource, bool]]:
    """``update_resource`` of several existing resources, each with the current row its caller
    read (``(resource, current)``), written in one statement per table (PostgreSQL: one in all):
    the same rows as one by one, each guarded as there (the UPDATE matches the version read;
    409 when one moved on: roll back). Returns (stored, created) for each, in order."""
    when = clock.now()
    out: list[tuple[StoredResource, bool]] = []
    changed: list[tuple[StoredResource, int]] = []
    for resource, current in changes:
        if not current.deleted and same_content(current.content, resource):
            out.append((current, False))
            continue
        version = current.version_id + 1
        doc = _stamp(resource, current.res_id, version, when)
        stored = StoredResource(current.res_type, current.res_id, version, when, False, doc, method)
        changed.append((stored, current.version_id))
        out.append((stored, current.deleted))
    if changed:
        note_written(session, {s.res_type for s, _ in changed})
        moved = search_index.update_many_with_index(
            session,
            [_version_row(s) for s, _ in changed],
            [s.content for s, _ in changed],
            [before for _, before in changed],
        )
        if moved:
            names = ", ".join(sorted(f"{t}/{i}" for t, i in moved))
            raise Conflict(f"{names} changed concurrently; retry")
    return out


def delete_resource(session: Session, res_type: str, res_id: str) -> StoredResource | None:
    """Write a tombstone version. Returns None when there was nothing (live) to delete."""
    current = read(session, res_type, res_id, for_update=True)
    if current is None or current.deleted:
        return None
    version = current.version_id + 1
    when = clock.now()
    doc = _stamp({"resourceType": res_type}, res_id, version, when)
    note_written(session, (res_type,))
    session.execute(
        update(resources)
        .where(resources.c.res_type == res_type, resources.c.res_id == res_id)
        .values(version_id=version, last_updated=clock.to_db(when), deleted=True, content=doc)
    )
    stored = StoredResource(res_type, res_id, version, when, True, doc, "DELETE")
    _write_version(session, stored)
    search_index.clear_index(session, res_type, res_id)
    session.execute(
        delete(conditional_keys).where(
            conditional_keys.c.res_type == res_type, conditional_keys.c.res_id == res_id
        )
    )
    return stored


def history(
    session: Session,
    *,
    res_type: str | None = None,
    res_id: str | None = None,
    since: datetime | None = None,
    before: datetime | None = None,
    count: int = 20,
    offset: int = 0,
    visible: Callable[[Any], ColumnElement[bool] | None] | None = None,
) -> tuple[list[StoredResource], int]:
    """Versions newest first, and how many match in all. History is append-only, so a page bounded
    by ``before`` (the first page's time) stays stable while new versions arrive.

    ``visible(r)``, a condition on a ``resources`` alias (the caller's row policy), keeps the
    versions of the resources whose current row satisfies it."""
    conds: list[ColumnElement[bool]] = []
    current = resources.alias("r")
    row_filter = visible(current) if visible is not None else None
    if row_filter is not None:
        conds.append(
            exists().where(
                current.c.res_type == resource_versions.c.res_type,
                current.c.res_id == resource_versions.c.res_id,
                row_filter,
            )
        )
    if res_type:
        conds.append(resource_versions.c.res_type == res_type)
    if res_id:
        conds.append(resource_versions.c.res_id == res_id)
    if since:
        conds.append(resource_versions.c.last_updated >= clock.to_db(since))
    if before:
        conds.append(resource_versions.c.last_updated <= clock.to_db(before))
    where = and_(*conds) if conds else None
    base = select(resource_versions)
    counter = select(func.count()).select_from(resource_versions)
    if where is not None:
        base, counter = base.where(where), counter.where(where)
    rows = session.execute(
        base.order_by(
            resource_versions.c.last_updated.desc(),
            resource_versions.c.res_type,
            resource_versions.c.res_id,
            resource_versions.c.version_id.desc(),
        )
        .limit(count)
        .offset(offset)
    ).all()
    total = session.execute(counter).scalar_one()
    return [_row_to_stored(r) for r in rows], total


def _criteria_hash(res_type: str, criteria: str) -> str:
    return hashlib.sha256(f"{res_type}?{criteria}".encode()).hexdigest()


def claim_conditional_key(session: Session, res_type: str, criteria: str, res_id: str) -> str:
    """Reserve ``criteria`` for a new resource ``res_id``; returns the id that owns it.

    The unique key makes concurrent identical conditional creates meet in the database: the
    slower one waits on the index, then sees the winner's id. A key left by a resource that was
    deleted since (or no longer matches) is taken over by compare-and-swap.
    """
    key = _criteria_hash(res_type, criteria)
    row = {"res_type": res_type, "key_hash": key, "criteria": criteria, "res_id": res_id}
    if _insert_new(session, conditional_keys, row):
        return res_id
    owner = session.execute(
        select(conditional_keys.c.res_id).where(
            conditional_keys.c.res_type == res_type, conditional_keys.c.key_hash == key
        )
    ).scalar_one_or_none()
    return owner if owner is not None else res_id


@lru_cache(maxsize=128)
def _claim_many_statement(dialect: str, count: int) -> Prebuilt:
    """A multi-row INSERT of ``count`` keys (res_type0, key_hash0 …), built once per count."""
    insert_for = pg_insert if dialect == "postgresql" else sqlite_insert
    keys = conditional_keys.c
    names = ("res_type", "key_hash", "criteria", "res_id")
    rows: list[dict[str, Any]] = [
        {name: bindparam(f"{name}{n}") for name in names} for n in range(count)
    ]
    return Prebuilt(
        insert_for(conditional_keys)
        .values(rows)
        .on_conflict_do_nothing()
        .returning(keys.res_type, keys.key_hash)
    )


def claim_conditional_keys(
    session: Session, claims: list[tuple[str, str, str]]
) -> dict[tuple[str, str], str]:
    """``claim_conditional_key`` of each (res_type, criteria, res_id), the new keys in one
    multi-row INSERT: (res_type, criteria) → the id that owns it."""
    rows = {
        (res_type, criteria): {
            "res_type": res_type,
            "key_hash": _criteria_hash(res_type, criteria),
            "criteria": criteria,
            "res_id": res_id,
        }
        for res_type, criteria, res_id in claims
    }
    if not rows:
        return {}
    ordered = sorted(rows.values(), key=lambda r: (r["res_type"], r["key_hash"]))  # lock order
    taken: set[tuple[str, str]] = set()
    for start in range(0, len(ordered), 500):  # within any database's limit of bound values
        part = ordered[start : start + 500]
        stmt = _claim_many_statement(session.get_bind().dialect.name, len(part))
        params = {f"{k}{n}": v for n, row in enumerate(part) for k, v in row.items()}
        taken.update((r[0], r[1]) for r in stmt.run(session, params))
    owners = {}
    for (res_type, criteria), row in rows.items():
        if (res_type, row["key_hash"]) in taken:
            owners[(res_type, criteria)] = row["res_id"]
        else:  # another resource holds it: as the one-key claim finds out
            owners[(res_type, criteria)] = claim_conditional_key(
                session, res_type, criteria, row["res_id"]
            )
    return owners


def release_conditional_key(
    session: Session, res_type: str, criteria: str, stale_id: str, res_id: str
) -> bool:
    """Move a stale key from ``stale_id`` to ``res_id``; False if someone else moved it first."""
    key = _criteria_hash(res_type, criteria)
    result = session.execute(
        update(conditional_keys)
        .where(
            conditional_keys.c.res_type == res_type,
            conditional_keys.c.key_hash == key,
            conditional_keys.c.res_id == stale_id,
        )
        .values(res_id=res_id)
    )
    return cast(CursorResult[Any], result).rowcount == 1
