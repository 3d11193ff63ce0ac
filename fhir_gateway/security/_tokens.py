"""SMART Backend Services tokens: client assertions in, gateway access tokens out and back.

A client asks ``POST /auth/token`` with ``grant_type=client_credentials`` and a
``client_assertion`` JWT signed with one of its registered keys (RS384 or ES384) where ``iss`` =
``sub`` = its client id, ``aud`` = the token URL, ``exp`` at most five minutes ahead and a ``jti``
it never used before (kept in ``auth_jti`` under a unique key, so that all gateway processes
agree). The answer is an access token the gateway signs (RS256, five minutes, no refresh token)
carrying the client's role, organisation and granted scopes.

Errors never quote the token or the assertion: only what was wrong with it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.context import Caller, scope_grants
from fhir_gateway.errors import GatewayError, InvalidRequest, Unauthorized
from fhir_gateway.security._clients import Client, JwksResolver, get_client
from fhir_gateway.security._keys import ACCESS_TOKEN_ALG, SigningKeys
from fhir_gateway.security._roles import TokenCaller
from fhir_gateway.store.db import Database
from fhir_gateway.store.security_tables import auth_jti

__all__ = [
    "ASSERTION_TYPE",
    "CLIENT_ALGS",
    "LIFETIME",
    "ISSUER",
    "Issued",
    "TokenService",
    "granted_scopes",
    "peek",
]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_ALGS = ("RS384", "ES384")
LIFETIME = 300  # seconds, for assertions (at most) and access tokens
ISSUER = "fhir-gateway"  # iss and aud of the gateway's own tokens
_SKEW = 5  # seconds of clock difference tolerated on "exp at most five minutes ahead"
_CACHE_SIZE = 4096
_HOUR = timedelta(hours=1)


def _refuse(reason: str) -> Unauthorized:
    return Unauthorized(
        f"invalid_client: {reason}", headers={"WWW-Authenticate": 'Bearer error="invalid_client"'}
    )


def _invalid_token(reason: str) -> Unauthorized:
    return Unauthorized(
        f"invalid_token: {reason}",
        headers={"WWW-Authenticate": 'Bearer realm="fhir-gateway", error="invalid_token"'},
    )


@dataclass(frozen=True, slots=True)
class Issued:
    client: Client
    response: dict[str, Any]


def _letters(perms: str) -> str:
    return {"read": "rs", "write": "cud", "*": "cruds"}.get(perms, perms)


def _covered(requested: str, registered: str) -> bool:
    _, _, rest = requested.partition("/")
    rtype, _, perms = rest.partition(".")
    letters = _letters(perms)
    if (
        not letters
        or any(ch not in "cruds" for ch in letters)
        or not requested.startswith("system/")
    ):
        return False
    probe = rtype if rtype != "*" else "\0every"
    if rtype == "*" and not registered.startswith("system/*."):
        return False
    return all(
        scope_grants(registered, probe, ch) or scope_grants(registered, rtype, ch) for ch in letters
    )


def granted_scopes(requested: str | None, registered: tuple[str, ...]) -> list[str]:
    """The requested scopes the registration covers (no ``scope``: all registered ones)."""
    if not requested:
        return list(registered)
    wanted = [s for s in requested.split() if s]
    return [s for s in wanted if any(_covered(s, r) for r in registered)]


class TokenService:
    def __init__(self, database: Database, keys: SigningKeys, jwks: JwksResolver) -> None:
        self.database = database
        self.keys = keys
        self.jwks = jwks
        self._verified: OrderedDict[str, tuple[int, Caller]] = OrderedDict()
        self._lock = threading.Lock()

    # -- issuing --------------------------------------------------------------------------------

    def issue(self, form: dict[str, str], token_url: str) -> Issued:
        if form.get("grant_type") != "client_credentials":
            raise InvalidRequest("unsupported_grant_type: only client_credentials is supported")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise _refuse(f"client_assertion_type must be {ASSERTION_TYPE}")
        assertion = form.get("client_assertion") or ""
        client, claims = self._verify_assertion(assertion, token_url)
        self._spend_jti(client.client_id, str(claims["jti"]), int(claims["exp"]))
        scopes = granted_scopes(form.get("scope"), client.scopes)
        if not scopes:
            raise InvalidRequest(
                "invalid_scope: none of the requested scopes is registered for this client"
            )
        return Issued(client, self._access_token(client, scopes))

    def _verify_assertion(self, assertion: str, token_url: str) -> tuple[Client, dict[str, Any]]:
        header, unverified = peek(assertion)
        alg = header.get("alg")
        if alg not in CLIENT_ALGS:
            raise _refuse(f"the assertion must be signed with {' or '.join(CLIENT_ALGS)}")
        client_id = unverified.get("iss")
        if not isinstance(client_id, str) or not client_id:
            raise _refuse("the assertion has no iss")
        client = self._client(client_id)
        keys = self._keys(client, header.get("kid"))
        try:
            token = jwt.decode(assertion, keys, algorithms=[alg])
        except (JoseError, ValueError, TypeError, KeyError):
            raise _refuse(
                "the assertion's signature does not verify with the client's registered keys"
            ) from None
        self._check_claims(token.claims, client_id, token_url)
        return client, token.claims

    def _client(self, client_id: str) -> Client:
        with self.database.session(readonly=True) as session:
            client = get_client(session, client_id)
        if client is None or not client.active:
            raise _refuse("unknown client")
        return client

    def _keys(self, client: Client, kid: Any) -> KeySet:
        try:
            keys = self.jwks.key_set(client, kid=kid if isinstance(kid, str) else None)
        except GatewayError:
            raise _refuse("the client's keys could not be loaded") from None
        if not isinstance(kid, str) or not any(k.kid == kid for k in keys.keys):
            raise _refuse("the assertion's kid names no registered key of this client")
        return keys

    def _check_claims(self, claims: dict[str, Any], client_id: str, token_url: str) -> None:
        if claims.get("sub") != client_id:
            raise _refuse("sub must equal iss (the client id)")
        aud = claims.get("aud")
        if aud != token_url and not (isinstance(aud, list) and token_url in aud):
            raise _refuse(f"aud must be the token URL {token_url}")
        exp, now = claims.get("exp"), int(clock.now().timestamp())
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise _refuse("the assertion has no exp")
        if isinstance(exp, float) and not math.isfinite(exp):  # JSON as Python writes it: NaN
            raise InvalidRequest("invalid_request: exp must be a finite NumericDate")
        if exp <= now:
            raise _refuse("the assertion has expired")
        if exp > now + LIFETIME + _SKEW:
            raise _refuse("exp may be at most five minutes ahead")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise _refuse("the assertion needs a jti (at most 256 characters)")

    def _spend_jti(self, client_id: str, jti: str, exp: int) -> None:
        """Record the jti; a second use fails on the unique key (in any process)."""
        expires = clock.to_db(_utc(exp))
        try:
            with self.database.session() as session:
                _forget_expired(session)
                with session.begin_nested():
                    session.execute(
                        insert(auth_jti).values(client_id=client_id, jti=jti, expires_at=expires)
                    )
        except IntegrityError:
            raise _refuse("this jti was already used") from None
        except GatewayError as exc:
            if exc.status == 409:  # the unit of work translated the unique-key violation
                raise _refuse("this jti was already used") from None
            raise

    def _access_token(self, client: Client, scopes: list[str]) -> dict[str, Any]:
        now = int(clock.now().timestamp())
        key = self.keys.private
        claims = {
            "iss": ISSUER,
            "aud": ISSUER,
            "sub": client.client_id,
            "iat": now,
            "exp": now + LIFETIME,
            "jti": str(uuid.uuid4()),
            "scope": " ".join(scopes),
            "role": client.role,
            "organization": client.organization,
        }
        token = jwt.encode(
            {"alg": ACCESS_TOKEN_ALG, "kid": key.kid}, claims, key, algorithms=[ACCESS_TOKEN_ALG]
        )
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": LIFETIME,
            "scope": claims["scope"],
        }

    # -- checking -------------------------------------------------------------------------------

    def authenticate(self, token: str, address: str | None) -> Caller:
        """The caller an access token stands for; Unauthorized (never quoting it) otherwise.

        A signature check costs ~0.25 ms, so tokens already verified are remembered by their
        exact text (any other string, a tampered one included, is verified afresh) until they
        expire, for the last _CACHE_SIZE tokens used. As before, a token stays good until it
        expires: removing a client stops new tokens, not those it holds.
        """
        now = int(clock.now().timestamp())
        with self._lock:
            hit = self._verified.get(token)
            if hit is not None:
                self._verified.move_to_end(token)
        if hit is not None and hit[0] > now:
            return replace(hit[1], address=address)
        caller, exp = self._verify_access_token(token, now)
        with self._lock:
            self._verified[token] = (exp, caller)
            while len(self._verified) > _CACHE_SIZE:
                self._verified.popitem(last=False)
        return replace(caller, address=address)

    def _verify_access_token(self, token: str, now: int) -> tuple[Caller, int]:
        try:
            decoded = jwt.decode(token, self.keys.public_set(), algorithms=[ACCESS_TOKEN_ALG])
        except (JoseError, ValueError, TypeError, KeyError):
            raise _invalid_token(
                "the access token is malformed or its signature does not verify"
            ) from None
        claims = decoded.claims
        if claims.get("iss") != ISSUER or claims.get("aud") != ISSUER:
            raise _invalid_token("the access token was not issued for this gateway")
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= now:
            raise _invalid_token("the access token has expired")
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("role"), str):
            raise _invalid_token("the access token names no client")
        caller = TokenCaller(
            client_id=claims["sub"],
            role=claims["role"],
            organization=claims.get("organization"),
            scopes=frozenset(str(claims.get("scope") or "").split()),
        )
        return caller, exp


def peek(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims before verification: only to find the client and its key."""
    _require_object_header(assertion)
    try:
        obj = jws.extract_compact(assertion.encode())
        claims = json.loads(obj.payload or b"")
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise _refuse("client_assertion is not a compact JWT") from None
    if not isinstance(claims, dict):
        raise _refuse("client_assertion carries no claims")
    return obj.headers(), claims


def _require_object_header(assertion: str) -> None:
    """A compact JWT whose JOSE header is JSON but not an object (an array, a string) is a
    malformed request (RFC 6749 invalid_request), which the JOSE library would not all refuse."""
    head = assertion.split(".", 1)[0] if assertion.count(".") == 2 else ""
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))) if head else {}
    except (ValueError, binascii.Error, UnicodeError):
        return  # not JSON at all: not a compact JWT (invalid_client, as before)
    if not isinstance(header, dict):
        raise InvalidRequest(
            "invalid_request: the client_assertion's JOSE header is not a JSON object"
        )


def _utc(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _forget_expired(session: Session) -> None:
    # An expired assertion is refused on exp alone, so its jti need not be kept any longer.
    cutoff = clock.to_db(clock.now()) - _HOUR
    session.execute(delete(auth_jti).where(auth_jti.c.expires_at < cutoff))
