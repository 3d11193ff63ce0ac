"""Client assertions and access tokens that must be refused: each is a 401 with an
OperationOutcome, and neither the token nor the assertion ever reaches the log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from security_helpers import (
    ClientKey,
    assertion,
    bearer,
    get_token,
    make_key,
    register,
    secure_client,
    token_form,
)

from fhir_gateway import clock


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, object], claims: dict[str, object]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


def _hs256(header: dict[str, object], claims: dict[str, object], secret: bytes) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _claims_of(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


def _tamper(token: str) -> str:
    head, payload, signature = token.split(".")
    flipped = "A" if signature[5] != "A" else "B"
    return f"{head}.{payload}.{signature[:5]}{flipped}{signature[6:]}"


@pytest.fixture
def client(database, database_url) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with secure_client(database, database_url) as test_client:
        yield test_client


@pytest.fixture
def ck(database) -> ClientKey:  # type: ignore[no-untyped-def]
    return register(database, "case-manager", ["system/*.cruds"], "Organization/care-coordination")


def _assert_refused(response, secret: str, caplog) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "login"
    assert secret not in response.text
    assert secret not in caplog.text
    for part in secret.split("."):  # not even a piece of it
        assert len(part) < 8 or part not in caplog.text


# -- client assertions at the token endpoint -------------------------------------------------------

ASSERTIONS: dict[str, Callable[[ClientKey], str]] = {
    "expired": lambda ck: assertion(ck, exp=int(time.time()) - 10),
    "exp more than five minutes ahead": lambda ck: assertion(ck, exp=int(time.time()) + 3600),
    "no exp": lambda ck: assertion(ck, exp=None),
    "wrong audience": lambda ck: assertion(ck, aud="https://elsewhere.example/token"),
    "sub differs from iss": lambda ck: assertion(ck, sub="someone-else"),
    "no jti": lambda ck: assertion(ck, jti=None),
    "unknown client": lambda ck: assertion(ClientKey("never-registered", ck.key, ck.alg)),
    "unknown key": lambda ck: assertion(ck, key=make_key(alg="ES384").key),
    "unknown kid": lambda ck: assertion(
        ck, header={"kid": "not-a-registered-kid"}, key=make_key(alg="ES384").key
    ),
    "alg none": lambda ck: _unsigned(
        {"alg": "none", "kid": ck.key.kid},
        {
            "iss": ck.client_id,
            "sub": ck.client_id,
            "aud": "http://testserver/auth/token",
            "exp": int(time.time()) + 200,
            "jti": "none-1",
        },
    ),
    "HS256 with the public key as secret": lambda ck: _hs256(
        {"alg": "HS256", "kid": ck.key.kid},
        {
            "iss": ck.client_id,
            "sub": ck.client_id,
            "aud": "http://testserver/auth/token",
            "exp": int(time.time()) + 200,
            "jti": "hs-1",
        },
        ck.key.as_pem(private=False),
    ),
    "tampered signature": lambda ck: _tamper(assertion(ck)),
    "tampered claims": lambda ck: ".".join(
        [
            assertion(ck).split(".")[0],
            _b64(json.dumps({**_claims_of(assertion(ck)), "sub": "x"}).encode()),
            assertion(ck).split(".")[2],
        ]
    ),
    "not a JWT": lambda ck: "not-a-jwt-at-all",
}


@pytest.mark.parametrize("case", list(ASSERTIONS))
def test_bad_client_assertion_is_refused(case, client, ck, caplog):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    signed = ASSERTIONS[case](ck)
    response = client.post("/auth/token", data=token_form(signed))
    _assert_refused(response, signed, caplog)
    assert "access_token" not in response.text


def test_a_good_assertion_works_once_and_its_jti_never_again(client, ck, caplog):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    signed = assertion(ck, jti="once-only")
    first = client.post("/auth/token", data=token_form(signed))
    assert first.status_code == 200, first.text
    again = client.post("/auth/token", data=token_form(signed))
    _assert_refused(again, signed, caplog)
    assert "already used" in again.json()["issue"][0]["diagnostics"]
    fresh_but_same_jti = assertion(ck, jti="once-only", exp=int(time.time()) + 250)
    _assert_refused(
        client.post("/auth/token", data=token_form(fresh_but_same_jti)), fresh_but_same_jti, caplog
    )
    assert first.json()["access_token"] not in caplog.text


def test_rs384_clients_are_accepted_but_not_rs256(database, client, caplog):  # type: ignore[no-untyped-def]
    rs = register(database, "ehr", ["system/*.rs"], "Organization/ehr-1", ck=make_key(alg="RS384"))
    response = client.post("/auth/token", data=token_form(assertion(rs)))
    assert response.status_code == 200, response.text
    weaker = assertion(ClientKey(rs.client_id, rs.key, "RS256"))  # the registered key, another alg
    _assert_refused(client.post("/auth/token", data=token_form(weaker)), weaker, caplog)


def test_wrong_grant_type_and_unregistered_scope_are_400(client, ck):  # type: ignore[no-untyped-def]
    form = {**token_form(assertion(ck)), "grant_type": "password"}
    assert client.post("/auth/token", data=form).status_code == 400
    refused = client.post("/auth/token", data=token_form(assertion(ck), scope="patient/Patient.rs"))
    assert refused.status_code == 400
    assert refused.json()["resourceType"] == "OperationOutcome"


def test_a_jwks_url_client_gets_its_keys_from_the_url(database, client):  # type: ignore[no-untyped-def]
    from fhir_gateway.security import add_client

    remote = make_key("remote-client")
    with database.session() as session:
        add_client(
            session,
            client_id=remote.client_id,
            role="ehr",
            organization="Organization/ehr-2",
            scopes=["system/*.rs"],
            jwks_url="https://keys.example/jwks.json",
        )
    fetched: list[str] = []

    def fetch(url: str) -> object:
        fetched.append(url)
        return remote.public_jwks

    client.app.state.security.jwks.fetch = fetch  # type: ignore[attr-defined]
    response = client.post("/auth/token", data=token_form(assertion(remote)))
    assert response.status_code == 200, response.text
    assert fetched == ["https://keys.example/jwks.json"]
    client.post("/auth/token", data=token_form(assertion(remote)))
    assert len(fetched) == 1  # cached


# -- access tokens at the API ---------------------------------------------------------------------


def _forged_tokens(good: str, client: TestClient) -> dict[str, str]:
    claims = _claims_of(good)
    public_pem = client.app.state.security.keys.private.as_pem(private=False)  # type: ignore[attr-defined]
    kid = json.loads(base64.urlsafe_b64decode(good.split(".")[0] + "==="))["kid"]
    return {
        "alg none": _unsigned({"alg": "none", "kid": kid}, claims),
        "HS256 with the gateway's public key as secret": _hs256(
            {"alg": "HS256", "kid": kid}, claims, public_pem
        ),
        "tampered signature": _tamper(good),
        "elevated role": ".".join(
            [
                good.split(".")[0],
                _b64(json.dumps({**claims, "role": "admin"}).encode()),
                good.split(".")[2],
            ]
        ),
        "garbage": "abc.def.ghi",
    }


def test_forged_access_tokens_are_refused(client, ck, caplog):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    good = get_token(client, ck)
    assert client.get("/Patient", headers=bearer(good)).status_code == 200
    for case, forged in _forged_tokens(good, client).items():
        response = client.get("/Patient", headers=bearer(forged))
        assert response.status_code == 401, case
        _assert_refused(response, forged, caplog)
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert good not in caplog.text


def test_an_access_token_expires_after_five_minutes(client, ck, caplog):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    good = get_token(client, ck)
    assert client.get("/Patient", headers=bearer(good)).status_code == 200
    later = datetime.now(UTC) + timedelta(minutes=5, seconds=1)
    clock.set_clock(lambda: later)
    try:
        _assert_refused(client.get("/Patient", headers=bearer(good)), good, caplog)
    finally:
        clock.reset_clock()


def test_a_token_from_another_gateway_is_refused(database, database_url, ck, caplog, tmp_path):  # type: ignore[no-untyped-def]
    with secure_client(database, database_url, signing_key_file=tmp_path / "other.pem") as other:
        foreign = get_token(other, ck)
    with secure_client(database, database_url) as client:
        _assert_refused(client.get("/Patient", headers=bearer(foreign)), foreign, caplog)


def test_tokens_survive_a_restart_and_are_shared_by_processes(database, database_url, ck):  # type: ignore[no-untyped-def]
    # the key the gateway makes and keeps in its database (signing_key_file unset)
    with secure_client(database, database_url, signing_key_file=None) as first:
        token = get_token(first, ck)
    with secure_client(
        database, database_url, signing_key_file=None
    ) as second:  # same key, read back
        assert second.get("/Patient", headers=bearer(token)).status_code == 200


def test_a_key_file_is_created_private_and_reused(database, database_url, ck, tmp_path):  # type: ignore[no-untyped-def]
    key_file = tmp_path / "signing.pem"
    with secure_client(database, database_url, signing_key_file=key_file) as first:
        token = get_token(first, ck)
    assert key_file.stat().st_mode & 0o077 == 0
    with secure_client(database, database_url, signing_key_file=key_file) as second:
        assert second.get("/Patient", headers=bearer(token)).status_code == 200


def test_missing_or_malformed_authorization_is_401_with_a_challenge(client):  # type: ignore[no-untyped-def]
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}):
        response = client.get("/Patient", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["resourceType"] == "OperationOutcome"
    assert client.get("/metadata").status_code == 200  # the CapabilityStatement stays public
