"""Malformed client assertions at ``POST /auth/token`` are a 400 (RFC 6749 invalid_request),
never a 500 (issue #15, item 10): a JOSE header that is not a JSON object, an ``exp`` that is not
a finite number (JSON as Python writes it allows NaN and Infinity)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from security_helpers import ClientKey, assertion, register, secure_client, token_form


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def client(database, database_url) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with secure_client(database, database_url) as test_client:
        yield test_client


@pytest.fixture
def ck(database) -> ClientKey:  # type: ignore[no-untyped-def]
    return register(database, "case-manager", ["system/*.cruds"], "Organization/care-coordination")


def _invalid_request(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == "invalid"
    assert issue["diagnostics"].startswith("invalid_request:")
    assert "access_token" not in response.text


@pytest.mark.parametrize("header", [[1, 2], ["alg", "ES384"], "ES384", 7, None, True])
def test_a_jose_header_that_is_not_an_object_is_invalid_request(client, ck, header):
    signed = assertion(ck)
    _, payload, signature = signed.split(".")
    forged = f"{_b64(json.dumps(header).encode())}.{payload}.{signature}"
    _invalid_request(client.post("/auth/token", data=token_form(forged)))


@pytest.mark.parametrize("exp", [float("nan"), float("inf"), float("-inf")])
def test_an_exp_that_is_not_a_finite_number_is_invalid_request(client, ck, exp):
    signed = assertion(ck, exp=exp)  # validly signed: only the claim is wrong
    _invalid_request(client.post("/auth/token", data=token_form(signed)))


def test_a_good_assertion_still_gets_a_token(client, ck):
    response = client.post("/auth/token", data=token_form(assertion(ck)))
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "bearer"


@pytest.mark.parametrize("header", [[1, 2], "RS256", None])
def test_a_bearer_token_whose_header_is_not_an_object_is_401(client, header):
    payload = _b64(json.dumps({"iss": "fhir-gateway", "exp": float("nan")}).encode())
    forged = f"{_b64(json.dumps(header).encode())}.{payload}.{_b64(b'x' * 64)}"
    response = client.get("/Patient", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401, response.text
    assert response.json()["issue"][0]["code"] == "login"
