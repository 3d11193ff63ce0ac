"""Deterministic ids that only this installation can derive.

Engines name what they create from what it is about (the care plan of ``Encounter/1``, the flag
of an overdue ``Task/7``), so that a re-sent message or a second run meets the primary key
instead of making a duplicate. Derived from public data alone, such an id would tell a partner
which hidden resources exist (a uuid5 of a known namespace and an id it holds). So the derivation
is an HMAC keyed with a per-installation secret: stable across restarts and shared by every
process on the database (a row of ``gateway_keys``, made on first use), unknown to clients.

The secret is read through the unit of work that derives the id: ``Database.session`` names its
session here (``unit_of_work``), so that callers keep plain signatures (``monitor_id(*parts)``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.store.security_tables import gateway_keys

__all__ = ["keyed_id", "installation_secret", "unit_of_work"]

_KEY_NAME = "resource-ids"
_INFO_KEY = "fhir_gateway.keyed_ids.secret"
_unit: ContextVar[Session | None] = ContextVar("fhir_gateway_unit_of_work", default=None)


@contextmanager
def unit_of_work(session: Session) -> Iterator[None]:
    """Ids derived inside this block use the secret of ``session``'s database."""
    token = _unit.set(session)
    try:
        yield
    finally:
        _unit.reset(token)


def keyed_id(namespace: uuid.UUID, name: str) -> str:
    """A UUID (version 8, RFC 9562) from HMAC-SHA256(secret, namespace ‖ name)."""
    session = _unit.get()
    if session is None:
        raise RuntimeError("keyed ids are derived inside a unit of work (Database.session)")
    mac = hmac.new(installation_secret(session), namespace.bytes + name.encode(), hashlib.sha256)
    raw = bytearray(mac.digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8: custom
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return str(uuid.UUID(bytes=bytes(raw)))


def installation_secret(session: Session) -> bytes:
    """The secret, made on first use. Inside the caller's transaction: a competing first use
    waits on the row's key and then reads the winner's secret; a rollback takes both the secret
    and the ids derived from it."""
    cached = session.info.get(_INFO_KEY)
    if isinstance(cached, bytes):
        return cached
    stored = _stored(session)
    if stored is None:
        _insert_if_absent(session)
        stored = _stored(session)
    assert stored is not None
    session.info[_INFO_KEY] = stored
    return stored


def _stored(session: Session) -> bytes | None:
    text = session.execute(
        select(gateway_keys.c.private_jwk).where(gateway_keys.c.name == _KEY_NAME)
    ).scalar_one_or_none()
    if text is None:
        return None
    key = json.loads(text)["k"]
    return base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))


def _insert_if_absent(session: Session) -> None:
    k = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    values = {
        "name": _KEY_NAME,
        "private_jwk": json.dumps({"kty": "oct", "k": k}),
        "created_at": clock.to_db(clock.now()),
    }
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(gateway_keys).values(**values).on_conflict_do_nothing())
