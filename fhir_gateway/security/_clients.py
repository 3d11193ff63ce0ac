"""Registered SMART backend-service clients, and the public keys they sign assertions with.

A client is registered with its role, the Organization it acts for, its scopes and either a JWKS
(inline) or a JWKS URL (fetched, cached, refetched when an unknown ``kid`` shows up, at most once
a minute). Only public keys are accepted: a private key in a JWKS means the wrong file was sent.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import CursorResult, delete, insert, select
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.errors import Conflict, InvalidRequest
from fhir_gateway.security._roles import ROLES, ceiling_text, scope_within_role
from fhir_gateway.store.prebuilt import Prebuilt
from fhir_gateway.store.security_tables import auth_clients

__all__ = [
    "Client",
    "add_client",
    "get_client",
    "list_clients",
    "remove_client",
    "JwksResolver",
    "parse_jwks",
]

_SCOPE = re.compile(r"^system/(\*|[A-Z][A-Za-z]+)\.(\*|read|write|c?r?u?d?s?)$")
_ORG = re.compile(r"^Organization/[A-Za-z0-9\-.]{1,64}$")
_NEEDS_ORG = frozenset({"partner", "hospital", "ehr"})
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    role: str
    organization: str | None
    scopes: tuple[str, ...]
    jwks: dict[str, Any] | None
    jwks_url: str | None
    senders: tuple[str, ...]
    active: bool = True

    def summary(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "role": self.role,
            "organization": self.organization,
            "scopes": " ".join(self.scopes),
            "keys": self.jwks_url or f"{len((self.jwks or {}).get('keys', []))} key(s) registered",
            "senders": list(self.senders),
        }


def parse_jwks(data: Any) -> KeySet:
    """A public JWKS, or InvalidRequest saying what is wrong with it."""
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not keys:
        raise InvalidRequest("A JWKS is a JSON object with a non-empty 'keys' array")
    for key in keys:
        if not isinstance(key, dict) or _PRIVATE_MEMBERS & set(key):
            raise InvalidRequest(
                "The JWKS holds private key material: register the public keys only"
            )
    try:
        return KeySet.import_key_set(data)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise InvalidRequest(f"The JWKS cannot be read: {exc.__class__.__name__}") from exc


def _validate(
    role: str, organization: str | None, scopes: list[str], jwks: Any, jwks_url: str | None
) -> None:
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}")
    if organization is not None and not _ORG.match(organization):
        raise InvalidRequest("organization must look like Organization/ID")
    if role in _NEEDS_ORG and organization is None:
        raise InvalidRequest(
            f"a {role} client acts for an organization: give --organization Organization/ID"
        )
    if not scopes:
        raise InvalidRequest("give at least one scope, e.g. system/Task.rs")
    for scope in scopes:
        if not _SCOPE.match(scope):
            raise InvalidRequest(
                f"{scope!r} is not a SMART system scope (system/Type.cruds or .read/.write)"
            )
        if not scope_within_role(role, scope):
            raise InvalidRequest(f"{scope} grants nothing a {role} may do ({ceiling_text(role)})")
    if (jwks is None) == (jwks_url is None):
        raise InvalidRequest("give exactly one of a JWKS or a JWKS URL")
    if jwks is not None:
        parse_jwks(jwks)
    if jwks_url is not None and not jwks_url.startswith(("https://", "http://")):
        raise InvalidRequest("the JWKS URL must be http(s)")


def add_client(
    session: Session,
    *,
    role: str,
    scopes: list[str],
    organization: str | None = None,
    jwks: dict[str, Any] | None = None,
    jwks_url: str | None = None,
    client_id: str | None = None,
    senders: list[str] | None = None,
) -> Client:
    _validate(role, organization, scopes, jwks, jwks_url)
    client = Client(
        client_id or str(uuid.uuid4()),
        role,
        organization,
        tuple(scopes),
        jwks,
        jwks_url,
        tuple(senders or ()),
    )
    if get_client(session, client.client_id) is not None:
        raise Conflict(f"client {client.client_id} is already registered")
    session.execute(
        insert(auth_clients).values(
            client_id=client.client_id,
            role=role,
            organization=organization,
            scopes=" ".join(scopes),
            jwks=jwks,
            jwks_url=jwks_url,
            senders=list(client.senders),
            active=True,
            created_at=clock.to_db(clock.now()),
        )
    )
    return client


def _client(row: Any) -> Client:
    return Client(
        row.client_id,
        row.role,
        row.organization,
        tuple(row.scopes.split()),
        row.jwks,
        row.jwks_url,
        tuple(row.senders or ()),
        bool(row.active),
    )


def get_client(session: Session, client_id: str) -> Client | None:
    row = session.execute(select(auth_clients).where(auth_clients.c.client_id == client_id)).first()
    return _client(row) if row is not None else None


def list_clients(session: Session) -> list[Client]:
    return [_client(r) for r in _LIST_CLIENTS.run(session)]


# built once: the intake reads the client list for every message it receives
_LIST_CLIENTS = Prebuilt(select(auth_clients).order_by(auth_clients.c.client_id))


def remove_client(session: Session, client_id: str) -> bool:
    result = session.execute(delete(auth_clients).where(auth_clients.c.client_id == client_id))
    return cast(CursorResult[Any], result).rowcount == 1


Fetch = Callable[[str], Any]


def _http_fetch(url: str) -> Any:
    response = httpx.get(url, timeout=5.0, follow_redirects=False)
    response.raise_for_status()
    return response.json()


class JwksResolver:
    """The key set of a client: inline, or from its JWKS URL through a small cache."""

    REFRESH_AFTER = 300.0  # seconds a fetched JWKS is trusted
    MIN_REFETCH = 60.0  # an unknown kid refetches at most this often

    def __init__(self, fetch: Fetch = _http_fetch) -> None:
        self.fetch = fetch  # the seam tests replace
        self._cache: dict[str, tuple[float, KeySet]] = {}
        self._lock = threading.Lock()

    def key_set(self, client: Client, *, kid: str | None = None) -> KeySet:
        if client.jwks is not None:
            return parse_jwks(client.jwks)
        assert client.jwks_url is not None
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(client.jwks_url)
        if cached is not None:
            age = now - cached[0]
            known = kid is None or any(k.kid == kid for k in cached[1].keys)
            if age < self.REFRESH_AFTER and (known or age < self.MIN_REFETCH):
                return cached[1]
        keys = self._download(client.jwks_url)
        with self._lock:
            self._cache[client.jwks_url] = (now, keys)
        return keys

    def _download(self, url: str) -> KeySet:
        try:
            data = self.fetch(url)
        except (httpx.HTTPError, ValueError) as exc:
            raise InvalidRequest(
                f"the client's JWKS URL could not be read ({exc.__class__.__name__})"
            ) from exc
        return parse_jwks(data)
