"""Write the search index of one resource; rebuild it for all (``fhir-gateway reindex``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.orm import Session

from fhir_gateway.search.extract import extract
from fhir_gateway.search.registry import Registry, get_registry
from fhir_gateway.store import search_parameters
from fhir_gateway.store.search_parameters import stored_definitions
from fhir_gateway.store.tables import INDEX_TABLES, resources

__all__ = ["write_index", "clear_index", "reindex", "load_custom_parameters"]


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
