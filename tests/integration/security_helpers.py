"""Shared pieces of the security tests: key pairs, client assertions, secured apps, tokens."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from fhir_gateway.app import create_app
from fhir_gateway.security import add_client
from fhir_gateway.settings import Settings
from fhir_gateway.store.db import Database

BASE = "http://testserver"
TOKEN_URL = f"{BASE}/auth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FHIR = {"Content-Type": "application/fhir+json"}


@dataclass
class ClientKey:
    client_id: str
    key: Any  # joserfc private key
    alg: str

    @property
    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}


def make_key(client_id: str | None = None, alg: str = "ES384") -> ClientKey:
    key = (
        ECKey.generate_key("P-384", private=True)
        if alg == "ES384"
        else RSAKey.generate_key(2048, private=True)
    )
    key.ensure_kid()
    return ClientKey(client_id or f"client-{uuid.uuid4().hex[:8]}", key, alg)


def assertion(
    ck: ClientKey, *, header: dict[str, Any] | None = None, key: Any = None, **claims: Any
) -> str:
    now = int(time.time())
    body = {
        "iss": ck.client_id,
        "sub": ck.client_id,
        "aud": TOKEN_URL,
        "exp": now + 240,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    head = {"alg": ck.alg, "kid": ck.key.kid, **(header or {})}
    return jwt.encode(
        head,
        {k: v for k, v in body.items() if v is not None},
        key or ck.key,
        algorithms=[head["alg"]],
    )


def token_form(signed: str, scope: str | None = None) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
    }
    if scope is not None:
        form["scope"] = scope
    return form


# The gateway's own signing key, in a file the first app of this process creates and every later
# one reads: making an RSA key for every test's app costs more than many tests. Tests of the key
# the gateway makes and keeps in its database pass signing_key_file=None.
_KEY_DIR = tempfile.mkdtemp(prefix="fhir-gateway-tests-")
atexit.register(shutil.rmtree, _KEY_DIR, ignore_errors=True)
SIGNING_KEY_FILE = Path(_KEY_DIR) / "signing-key.pem"


def secure_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "base_url": None,
        "auth_enabled": True,
        "audit_enabled": True,
        "careplan_seed": False,
        "signing_key_file": SIGNING_KEY_FILE,
        **overrides,
    }
    return Settings(**values)


@contextmanager
def secure_client(database: Database, database_url: str, **overrides: Any) -> Iterator[TestClient]:
    app = create_app(secure_settings(database_url, **overrides), database=database)
    with TestClient(app, base_url=BASE) as client:
        yield client


def register(
    database: Database,
    role: str,
    scopes: list[str],
    organization: str | None = None,
    ck: ClientKey | None = None,
    **extra: Any,
) -> ClientKey:
    ck = ck or make_key()
    with database.session() as session:
        add_client(
            session,
            client_id=ck.client_id,
            role=role,
            organization=organization,
            scopes=scopes,
            jwks=ck.public_jwks,
            **extra,
        )
    return ck


def get_token(client: TestClient, ck: ClientKey, scope: str | None = None) -> str:
    response = client.post("/auth/token", data=token_form(assertion(ck), scope))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **FHIR}


def flush_audit(client: TestClient) -> None:
    client.app.state.security.auditor.flush()  # type: ignore[attr-defined]
