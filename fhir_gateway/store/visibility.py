"""Per-caller visibility: the seam between the store and the access policy.

The store knows SQL, not who may see what. A ``VisibilityPolicy`` (the security package installs one)
answers three questions; until one is installed every caller sees everything as stored.

* ``where(caller, r, res_type=None)``: a condition on a ``resources`` alias ``r`` that keeps the
  rows this caller may see, or None for no restriction; given ``res_type``, it may leave out the
  rules of other types. Search, includes, chains, ``_has``, history and the
  conditional interactions all apply it.
* ``restricted(caller)``: whether rows must be checked and served copies shaped for this caller
  (False keeps the fast path: stored bytes out as they are).
* ``serve(caller, resource, session=None)``: the copy this caller receives (e.g. a redacted
  Patient, a disclosure obligation added to the labels; given the session, also the consent it
  rests on, noted for the accounting of disclosures); ``serve_version`` the same for a past
  version (history, vread), or None when that version must not reach this caller.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Select, bindparam, select
from sqlalchemy.orm import Session

from fhir_gateway.context import Caller
from fhir_gateway.store.repository import StoredResource
from fhir_gateway.store.tables import resources

__all__ = ["VisibilityPolicy", "install", "current", "is_visible"]


class VisibilityPolicy(Protocol):
    def where(
        self, caller: Caller, r: Any, res_type: str | None = None
    ) -> ColumnElement[bool] | None: ...

    def restricted(self, caller: Caller) -> bool: ...

    def serve(
        self, caller: Caller, resource: dict[str, Any], session: Session | None = None
    ) -> dict[str, Any]: ...

    def serve_version(
        self, session: Session, caller: Caller, version: StoredResource
    ) -> dict[str, Any] | None: ...


class _Open:
    def where(
        self, caller: Caller, r: Any, res_type: str | None = None
    ) -> ColumnElement[bool] | None:
        return None

    def restricted(self, caller: Caller) -> bool:
        return False

    def serve(
        self, caller: Caller, resource: dict[str, Any], session: Session | None = None
    ) -> dict[str, Any]:
        return resource

    def serve_version(
        self, session: Session, caller: Caller, version: StoredResource
    ) -> dict[str, Any] | None:
        return version.content


_policy: VisibilityPolicy = _Open()


def install(policy: VisibilityPolicy) -> None:
    global _policy
    _policy = policy
    _visible_query.cache_clear()


def current() -> VisibilityPolicy:
    return _policy


def is_visible(session: Session, caller: Caller, res_type: str, res_id: str) -> bool:
    """May ``caller`` see the current, live ``res_type/res_id``?"""
    return session.execute(_visible_query(caller, res_type), {"res_id": res_id}).first() is not None


@lru_cache(maxsize=512)
def _visible_query(caller: Caller, res_type: str) -> Select[Any]:
    # Built once per caller and type: a partner's row rule is a large statement, and building
    # it cost more than running it (the intake checks each referral it pushes to a partner).
    r = resources.alias("r")
    query = select(r.c.res_id).where(
        r.c.res_type == res_type, r.c.res_id == bindparam("res_id"), r.c.deleted.is_(False)
    )
    cond = _policy.where(caller, r, res_type)
    return (query.where(cond) if cond is not None else query).limit(1)
