"""Data built from stored resources (the templates, the partner directory), kept per database and
rebuilt only when a resource of its types is created, updated or deleted — through the API too.

The database is asked (a fingerprint) once per transaction, for the types of every such cache at
once (a discharge uses four of them: one statement, not four): again only after the transaction
itself wrote a resource of those types (the store notes each type it writes)."""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from fhir_gateway.store import transaction_memo
from fhir_gateway.store.prebuilt import Prebuilt
from fhir_gateway.store.tables import resources

__all__ = ["StoredDataCache", "fingerprint", "forget_stored_data"]

T = TypeVar("T")


_STAMPS = "careplans.stored_data_stamps"
_NO_STAMP = (0, None, None)


def fingerprint(session: Session, types: tuple[str, ...]) -> tuple[Any, ...]:
    """Changes whenever a resource of ``types`` is created, updated or deleted: per type, how
    many, the newest update, the sum of their versions. Read for the types of every cache at
    once, and kept for the transaction until it writes one of them."""
    every = _cached_types() | set(types)
    memo = transaction_memo.memo(session)
    seen = transaction_memo.writes_to(session, every)
    known = memo.get(_STAMPS)
    if known is None or known[0] != seen or not every <= known[1].keys():
        known = (seen, _read_stamps(session, every))
        memo[_STAMPS] = known
    return tuple(known[1][t] for t in types)


def _read_stamps(session: Session, types: set[str]) -> dict[str, tuple[Any, ...]]:
    params = {f"t{n}": t for n, t in enumerate(sorted(types))}
    rows = _stamps_of(len(types)).run(session, params).all()
    stamps = dict.fromkeys(types, _NO_STAMP)
    stamps.update((row[0], tuple(row[1:])) for row in rows)
    return stamps


@functools.lru_cache(maxsize=16)
def _stamps_of(count: int) -> Prebuilt:
    """Built once per number of types: asked in every transaction that uses a cache."""
    return Prebuilt(
        select(
            resources.c.res_type,
            func.count(),
            func.max(resources.c.last_updated),
            func.sum(resources.c.version_id),
        )
        .where(resources.c.res_type.in_([bindparam(f"t{n}") for n in range(count)]))
        .group_by(resources.c.res_type)
    )


def _cached_types() -> set[str]:
    return {t for cache in list(_caches) for t in cache.types}


class StoredDataCache(Generic[T]):
    def __init__(self, types: tuple[str, ...], load: Callable[[Session], T]) -> None:
        self.types = types
        self._load = load
        self._entries: dict[str, tuple[tuple[Any, ...], T]] = {}
        self._lock = threading.Lock()
        self._forgotten = 0  # a transaction's memo from before ``forget`` no longer holds
        _caches.add(self)

    def forget(self) -> None:
        with self._lock:
            self._entries.clear()
            self._forgotten += 1

    def get(self, session: Session) -> T:
        memo = transaction_memo.memo(session)
        seen = (self._forgotten, transaction_memo.writes_to(session, self.types))
        remembered = memo.get(self)
        if remembered is not None and remembered[0] == seen:
            return cast(T, remembered[1])
        value = self._current(session)
        memo[self] = (seen, value)
        return value

    def _current(self, session: Session) -> T:
        key = str(session.get_bind().engine.url)
        stamp = fingerprint(session, self.types)
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        value = self._load(session)
        with self._lock:
            self._entries[key] = (stamp, value)
        return value


# Every cache, so that a database put back to an earlier state by other means than writes (a
# restore, a test reinserting rows) can drop what the fingerprint could no longer tell apart.
_caches: weakref.WeakSet[StoredDataCache[Any]] = weakref.WeakSet()


def forget_stored_data() -> None:
    for cache in list(_caches):
        cache.forget()
