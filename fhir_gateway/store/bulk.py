"""The bulk write path: many new resources at once, for trusted data (loads, benchmarks, migrations).

Each resource gets exactly the rows a create through the API writes (``repository.create_resource``):
its current row and version 1, ``meta.versionId``/``meta.lastUpdated`` stamped, and its search-index
rows from the same ``search.extract``. What it leaves out, by design: the write hooks (care-plan
engine, referral workflow, notifications, conditional keys, the security labels the gateway derives,
e.g. 42 CFR Part 2) and, unless asked, validation. Data loaded this way is taken as it is, labels
included, so load only what you trust.

Rows go in chunks: PostgreSQL takes them through ``COPY`` (psycopg), SQLite through executemany.
Everything happens in the caller's transaction, so a load that fails part-way writes nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.errors import InvalidRequest
from fhir_gateway.fhir.types import is_supported
from fhir_gateway.fhir.validation import validate_resource
from fhir_gateway.search.extract import TABLE_COLUMNS, IndexRows, extract
from fhir_gateway.store import search_parameters
from fhir_gateway.store.repository import new_id
from fhir_gateway.store.tables import INDEX_TABLES, resource_versions, resources
from fhir_gateway.store.transaction_memo import note_written

__all__ = ["BulkError", "BulkResult", "load", "load_labelled", "analyze"]

CHUNK = 2000  # resources per round of COPY / executemany: big enough to amortise, small in memory
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_RESOURCE_COLUMNS = ("res_type", "res_id", "version_id", "last_updated", "deleted", "content")
_VERSION_COLUMNS = (*_RESOURCE_COLUMNS, "method")


class BulkError(InvalidRequest):
    """A resource of the input that cannot be loaded; the message starts with its label."""


@dataclass
class BulkResult:
    by_type: Counter[str] = field(default_factory=Counter)
    index_rows: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_type.values())


@dataclass(frozen=True, slots=True)
class _Row:
    label: str
    res_type: str
    res_id: str
    method: str
    last_updated: datetime  # naive UTC
    doc: dict[str, Any]
    index: IndexRows


# -- public ------------------------------------------------------------------------------------


def load(session: Session, items: Iterable[Mapping[str, Any]], **options: Any) -> BulkResult:
    """Load resources (labelled ``resource N`` in errors); see ``load_labelled`` for the options."""
    return load_labelled(session, ((f"resource {n}", r) for n, r in enumerate(items, 1)), **options)


def load_labelled(
    session: Session,
    items: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    validate: bool = False,
    keep_last_updated: bool = False,
    now: datetime | None = None,
    chunk: int = CHUNK,
) -> BulkResult:
    """Write ``(label, resource)`` pairs as new resources in the session's transaction.

    A resource keeps its ``id`` (written as a PUT would) or gets a new one (as a POST). Its
    lastUpdated is ``now`` (default: the clock), or with ``keep_last_updated`` its own
    ``meta.lastUpdated`` when it has one (never later than ``now``); its versionId is 1.
    Raises ``BulkError`` naming the label of a resource that is invalid or already exists.
    """
    now = now or clock.now()
    writer = _pg_write if session.get_bind().dialect.name == "postgresql" else _sqlite_write
    result = BulkResult()
    for rows in _chunks(items, chunk, validate=validate, keep=keep_last_updated, now=now):
        _refuse_existing(session, rows)
        note_written(session, {row.res_type for row in rows})
        writer(session, rows)
        for row in rows:
            result.by_type[row.res_type] += 1
            result.index_rows += sum(len(kind_rows) for kind_rows in row.index.values())
    if result.by_type.get("SearchParameter"):
        search_parameters.changed(session)  # every process loads them after commit
    return result


def analyze(session: Session) -> None:
    """Refresh PostgreSQL's planner statistics after a big load (SQLite needs none here)."""
    if session.get_bind().dialect.name == "postgresql":
        names = [resources.name, resource_versions.name, *(t.name for t in INDEX_TABLES.values())]
        session.execute(text(f"ANALYZE {', '.join(names)}"))


# -- preparing ---------------------------------------------------------------------------------


def _chunks(
    items: Iterable[tuple[str, Mapping[str, Any]]],
    size: int,
    *,
    validate: bool,
    keep: bool,
    now: datetime,
) -> Iterator[list[_Row]]:
    rows: list[_Row] = []
    for label, resource in items:
        rows.append(_prepare(label, resource, validate=validate, keep=keep, now=now))
        if len(rows) >= size:
            yield rows
            rows = []
    if rows:
        yield rows


def _prepare(label: str, resource: Any, *, validate: bool, keep: bool, now: datetime) -> _Row:
    if not isinstance(resource, Mapping):
        raise BulkError(f"{label}: not a JSON object")
    res_type = resource.get("resourceType")
    if not isinstance(res_type, str) or not is_supported(res_type):
        raise BulkError(f"{label}: unknown or missing resourceType {res_type!r}")
    given = resource.get("id")
    if given is not None and (not isinstance(given, str) or not _ID.match(given)):
        raise BulkError(f"{label}: {given!r} is not a valid resource id")
    if validate:
        try:
            validate_resource(resource)
        except InvalidRequest as exc:
            raise BulkError(f"{label}: {exc.message}", issues=exc.issues) from exc
    res_id = given or new_id()
    when = _last_updated(label, resource, now) if keep else now
    doc = _stamp(resource, res_id, when)
    method = "PUT" if given else "POST"  # as the API: a client-chosen id is an update-as-create
    return _Row(label, res_type, res_id, method, clock.to_db(when), doc, extract(doc))


def _last_updated(label: str, resource: Mapping[str, Any], now: datetime) -> datetime:
    stamp = (resource.get("meta") or {}).get("lastUpdated")
    if stamp is None:
        return now
    try:
        when = datetime.fromisoformat(stamp)
    except (TypeError, ValueError) as exc:
        raise BulkError(f"{label}: meta.lastUpdated {stamp!r} is not a FHIR instant") from exc
    if when.tzinfo is None:
        raise BulkError(f"{label}: meta.lastUpdated {stamp!r} has no time zone")
    return min(when, now)  # never in the future: _lastUpdated and _since pollers would miss it


def _stamp(resource: Mapping[str, Any], res_id: str, when: datetime) -> dict[str, Any]:
    # The same stamping as repository.create_resource (a version 1 of ``when``).
    doc = dict(resource)
    doc["id"] = res_id
    meta = dict(doc.get("meta") or {})
    meta["versionId"] = "1"
    meta["lastUpdated"] = clock.to_instant(when)
    doc["meta"] = meta
    return doc


# -- writing -----------------------------------------------------------------------------------


def _refuse_existing(session: Session, rows: list[_Row]) -> None:
    """Name the first resource that would break the primary key, before the database refuses the
    chunk with a message that names none (and, on PostgreSQL, aborts the transaction)."""
    by_type: dict[str, set[str]] = {}
    for row in rows:
        ids = by_type.setdefault(row.res_type, set())
        if row.res_id in ids:
            raise BulkError(f"{row.label}: {row.res_type}/{row.res_id} appears twice in the input")
        ids.add(row.res_id)
    existing = {
        (res_type, res_id)
        for res_type, ids in by_type.items()
        for res_id in session.execute(
            select(resources.c.res_id).where(
                resources.c.res_type == res_type, resources.c.res_id.in_(list(ids))
            )
        ).scalars()
    }
    for row in rows:
        if (row.res_type, row.res_id) in existing:
            raise BulkError(
                f"{row.label}: {row.res_type}/{row.res_id} already exists (in the database or earlier in the input)"
            )


def _index_rows(rows: list[_Row]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        for kind, kind_rows in row.index.items():
            for index_row in kind_rows:
                index_row["res_type"] = row.res_type
                index_row["res_id"] = row.res_id
            out.setdefault(kind, []).extend(kind_rows)
    return out


def _sqlite_write(session: Session, rows: list[_Row]) -> None:
    current = [
        {
            "res_type": r.res_type,
            "res_id": r.res_id,
            "version_id": 1,
            "last_updated": r.last_updated,
            "deleted": False,
            "content": r.doc,
        }
        for r in rows
    ]
    session.execute(insert(resources), current)
    session.execute(
        insert(resource_versions),
        [{**c, "method": r.method} for c, r in zip(current, rows, strict=True)],
    )
    for kind, kind_rows in _index_rows(rows).items():
        session.execute(insert(INDEX_TABLES[kind]), kind_rows)


def _pg_write(session: Session, rows: list[_Row]) -> None:
    driver = session.connection().connection.driver_connection  # psycopg, in this transaction
    bodies = [orjson.dumps(r.doc).decode() for r in rows]
    current = [
        (r.res_type, r.res_id, 1, r.last_updated, False, body)
        for r, body in zip(rows, bodies, strict=True)
    ]
    try:
        with driver.cursor() as cursor:  # type: ignore[union-attr]
            _copy(cursor, resources.name, _RESOURCE_COLUMNS, current)
            _copy(
                cursor,
                resource_versions.name,
                _VERSION_COLUMNS,
                [(*c, r.method) for c, r in zip(current, rows, strict=True)],
            )
            for kind, kind_rows in _index_rows(rows).items():
                columns = ("res_type", "res_id", *TABLE_COLUMNS[kind])
                _copy(
                    cursor,
                    INDEX_TABLES[kind].name,
                    columns,
                    [tuple(ir[c] for c in columns) for ir in kind_rows],
                )
    except psycopg.Error as exc:  # e.g. a \u0000 that jsonb refuses: name the chunk, not psycopg
        raise BulkError(
            f"{rows[0].label} to {rows[-1].label}: the database refused a row: {exc}"
        ) from exc


def _copy(cursor: Any, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
