"""Seed data that fixtures store before every test, stored the slow way once per process.

Storing a data set through the gateway's services validates, indexes, labels and (for web users)
hashes passwords: more time than most tests take. ``seed_once`` runs the seeding function the
first time and keeps the rows it added to the tables; when a later test asks for the same seed
over tables that hold exactly what they held then, it inserts those rows directly: the same
rows, ids and timestamps as the first time. Anything else (the tables differ, the seed changed
or deleted a row) runs the seeding function as it is.

The care-plan caches of templates and partners know a change by the count, the newest timestamp
and the sum of the versions of their resources, which assumes a database never goes back to an
earlier state: a seed whose rows feed such a cache passes ``restored`` to drop them
(``seed_templates`` does).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, select

from fhir_gateway import careplans
from fhir_gateway.settings import Settings
from fhir_gateway.store.db import Database
from fhir_gateway.store.schema import metadata

__all__ = ["seed_once", "seed_templates"]

Rows = dict[str, list[tuple[Any, ...]]]


@dataclass(frozen=True)
class _Kept:
    before: Rows
    added: Rows


_kept: dict[tuple[str, Hashable], _Kept] = {}


def seed_templates(database: Database, settings: Settings) -> None:
    """The shipped (and the settings' own) care-plan templates and partner directory, as
    ``careplans.seed`` stores them; the in-process caches built from them are dropped whenever the
    rows are put back, since a database going back to an earlier state can fool their fingerprint."""
    key = ("care-plan templates and partners", settings.partners, settings.careplans)
    seed_once(
        database,
        key,
        lambda: database.write(careplans.seed, settings),
        restored=careplans.forget_stored_data,
    )


def seed_once(
    database: Database,
    key: Hashable,
    seed: Callable[[], object],
    *,
    restored: Callable[[], None] | None = None,
) -> None:
    """Run ``seed`` (it stores through ``database``), or insert the rows it stored before.

    ``key`` names the seed and whatever else its outcome depends on besides the tables: the
    settings of the app whose write rules (labels, workflow) the writes run through, arguments.
    """
    where = (database.engine.url.render_as_string(hide_password=False), key)
    before = _rows(database)
    kept = _kept.get(where)
    if kept is not None and kept.before == before:
        _insert(database, kept.added)
        database.search_parameters.mark_stale()  # read the version again, as after any commit
        if restored is not None:
            restored()
        return
    seed()
    added = _added(before, _rows(database))
    if added is not None:
        _kept[where] = _Kept(before, added)


def _rows(database: Database) -> Rows:
    with database.engine.connect() as conn:
        return {
            table.name: [tuple(row) for row in conn.execute(select(table))]
            for table in metadata.sorted_tables
        }


def _added(before: Rows, after: Rows) -> Rows | None:
    """The rows ``after`` holds beyond ``before``; None when a row of ``before`` changed."""
    added: Rows = {}
    for name, rows in after.items():
        if any(row not in rows for row in before[name]):
            return None
        added[name] = [row for row in rows if row not in before[name]]
    return added


def _insert(database: Database, rows: Rows) -> None:
    with database.engine.begin() as conn:
        for table in metadata.sorted_tables:  # referenced tables first
            if rows[table.name]:
                conn.execute(table.insert(), [_as_dict(table, row) for row in rows[table.name]])


def _as_dict(table: Table, row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(table.columns.keys(), row, strict=True))
