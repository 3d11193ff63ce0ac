"""Verified access tokens are remembered by their exact text: a remembered token still expires, and
no other string (a tampered copy included) is ever answered from memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fhir_gateway import clock
from fhir_gateway.errors import Unauthorized
from fhir_gateway.security import _tokens
from fhir_gateway.security._clients import Client, JwksResolver
from fhir_gateway.security._keys import SigningKeys
from fhir_gateway.security._tokens import TokenService

CLIENT = Client(
    "cm-app",
    "case-manager",
    "Organization/care-coordination",
    ("system/*.cruds",),
    {"keys": []},
    None,
    (),
)


@pytest.fixture
def tokens(tmp_path: Path) -> TokenService:
    # The key comes from a file: the database is never reached by checking tokens.
    return TokenService(None, SigningKeys(None, tmp_path / "signing.pem"), JwksResolver())  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _fixed_clock() -> Any:
    yield
    clock.reset_clock()


def _at(when: datetime) -> None:
    clock.set_clock(lambda: when)


def _token(tokens: TokenService) -> str:
    return str(tokens._access_token(CLIENT, ["system/*.cruds"])["access_token"])


def _tamper(token: str) -> str:
    head, payload, signature = token.split(".")
    flipped = "A" if signature[10] != "A" else "B"
    return f"{head}.{payload}.{signature[:10]}{flipped}{signature[11:]}"


def test_a_remembered_token_still_expires(tokens: TokenService) -> None:
    start = datetime.now(UTC)
    _at(start)
    token = _token(tokens)
    assert tokens.authenticate(token, "10.0.0.1").client_id == "cm-app"
    assert token in tokens._verified  # remembered
    _at(start + timedelta(seconds=_tokens.LIFETIME - 1))
    assert tokens.authenticate(token, "10.0.0.1").client_id == "cm-app"
    _at(start + timedelta(seconds=_tokens.LIFETIME))
    with pytest.raises(Unauthorized, match="expired"):
        tokens.authenticate(token, "10.0.0.1")


def test_a_tampered_token_is_not_answered_from_memory(tokens: TokenService) -> None:
    token = _token(tokens)
    tokens.authenticate(token, None)
    for forged in (_tamper(token), token + "x", token[:-1], " " + token, token.upper()):
        with pytest.raises(Unauthorized):
            tokens.authenticate(forged, None)
    assert tokens.authenticate(token, None).client_id == "cm-app"  # the good one is still good
    assert list(tokens._verified) == [token]  # refusals are not remembered


def test_the_caller_carries_this_request_s_address(tokens: TokenService) -> None:
    token = _token(tokens)
    assert tokens.authenticate(token, "10.0.0.1").address == "10.0.0.1"
    assert tokens.authenticate(token, "10.0.0.2").address == "10.0.0.2"


def test_memory_is_bounded_and_keeps_the_tokens_in_use(
    tokens: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_tokens, "_CACHE_SIZE", 3)
    first, *others = [_token(tokens) for _ in range(4)]
    tokens.authenticate(first, None)
    for token in others[:2]:
        tokens.authenticate(token, None)
    tokens.authenticate(first, None)  # used again: the least recently used is others[0]
    tokens.authenticate(others[2], None)
    assert list(tokens._verified) == [others[1], first, others[2]]
