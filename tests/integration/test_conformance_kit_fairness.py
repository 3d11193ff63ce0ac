"""The kit is fair to other servers: behaviour FHIR R4 allows is a warning, not a failure, and a
failing check names every failing sub-case. The gateway is dressed up as such a peer by one ASGI
layer (what Medplum 5.0.10 did on the same machine): booleans refuse ``system|code``, 400 instead
of 415, ``Prefer: handling=strict`` ignored, untyped chains refused, terminology bindings not
checked, and no ``sa``/``eb`` date prefixes."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest

from conformance import run_kit
from conformance._report import FAIL, PASS, WARN

_GENDER = re.compile(
    rb'("gender"\s*:\s*|"path"\s*:\s*"/gender"\s*,\s*"value"\s*:\s*)"(?!(?:male|female|other|unknown)")[^"]*"'
)


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.model_copy(update={"rate_limit_per_minute": 0})


def _refused(params: list[tuple[str, str]]) -> bool:
    return any(
        (k == "active" and v not in ("true", "false"))  # a boolean takes true or false only
        or k == "subject.identifier"  # an untyped chain: "say subject:Patient"
        or (k == "birthdate" and v[:2] in ("sa", "eb"))  # prefixes this peer lacks
        for k, v in params
    )


class PeerLike:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _refused(parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True)):
            body = orjson.dumps(
                {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "not-supported"}],
                }
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [(b"content-type", b"application/fhir+json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = _GENDER.sub(
            rb'\1"unknown"', b"".join(chunks)
        )  # any gender is taken: no binding checked
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"prefer", b"content-length")]
        scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        given = False

        async def replay() -> dict[str, Any]:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # type: ignore[no-any-return]

        async def as_400(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] == 415:
                message = {**message, "status": 400}
            await send(message)

        await self.app(scope, replay, as_400)


SELECTION = [
    "capability.Patient.search_params",
    "errors.media_type",
    "errors.media_type_415",
    "errors.strict_unknown_param",
    "search.chain",
    "search.chain_untyped",
    "transaction.atomic",
    "patch.failing",
    "search.date",
]


def test_what_r4_allows_is_a_warning_and_every_failing_sub_case_is_named(app, request) -> None:  # type: ignore[no-untyped-def]
    app.add_middleware(PeerLike)
    base_url = request.getfixturevalue("live_server")
    report = run_kit(base_url, select=SELECTION)
    results = {r.id: r for r in report.results}
    assert (
        results["capability.Patient.search_params"].status == PASS
    )  # active is probed as a boolean
    assert results["errors.media_type"].status == PASS  # 400 is allowed …
    assert results["errors.media_type_415"].status == WARN  # … 415 is what HTTP prefers
    assert results["errors.strict_unknown_param"].status == WARN  # a client preference
    assert results["search.chain"].status == PASS
    assert results["search.chain_untyped"].status == WARN  # a server may refuse it
    assert (
        results["transaction.atomic"].status == PASS
    )  # invalid by structure, whatever the binding
    assert results["patch.failing"].status == PASS
    date = results["search.date"]
    assert date.status == FAIL
    assert date.message.startswith("2 sub-cases fail")
    assert "birthdate=sa1980-05-17" in date.message and "birthdate=eb1980-05-17" in date.message
