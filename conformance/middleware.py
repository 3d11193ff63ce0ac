"""An ASGI middleware that checks every FHIR resource an app sends: the official R4 JSON schema,
and the profile rules for resources that claim a known profile or that the gateway wrote itself.

For tests: it never changes a response, it records what it finds (``EmittedViolations``).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from conformance.profiles import default_engine
from conformance.schema import schema_issues

__all__ = ["EmittedViolations", "ValidatingMiddleware", "problems_of"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_FHIR_JSON = b"application/fhir+json"


def problems_of(resource: Any) -> list[str]:
    """Schema violations and profile-rule errors of one emitted resource (empty when clean)."""
    if not isinstance(resource, dict):
        return [f"the body is a JSON {type(resource).__name__}, not a resource"]
    found = [str(issue) for issue in schema_issues(resource)]
    found += [str(v) for v in default_engine().errors(resource)]
    return found


@dataclass
class EmittedViolations:
    """What the middleware found, one line per problem, naming the request that produced it."""

    items: list[str] = field(default_factory=list)
    responses: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, request: str, problems: list[str]) -> None:
        with self._lock:
            self.items.extend(f"{request}: {p}" for p in problems)

    def counted(self) -> None:
        with self._lock:
            self.responses += 1


class ValidatingMiddleware:
    def __init__(self, app: ASGIApp, violations: EmittedViolations) -> None:
        self.app = app
        self.violations = violations

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = {"fhir": False, "status": 0, "chunks": []}

        async def watching_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                ctype = dict(message.get("headers") or []).get(b"content-type", b"")
                state["fhir"] = ctype.startswith(_FHIR_JSON)
            elif message["type"] == "http.response.body" and state["fhir"]:
                state["chunks"].append(message.get("body", b""))
                if not message.get("more_body", False):
                    self._check(scope, state["status"], b"".join(state["chunks"]))
            await send(message)

        await self.app(scope, receive, watching_send)

    def _check(self, scope: Scope, status: int, body: bytes) -> None:
        self.violations.counted()
        query = scope.get("query_string", b"").decode("latin-1")
        request = f"{scope['method']} {scope['path']}{'?' + query if query else ''} → {status}"
        try:
            resource = orjson.loads(body)
        except orjson.JSONDecodeError:
            self.violations.add(request, ["the application/fhir+json body is not JSON"])
            return
        problems = problems_of(resource)
        if problems:
            self.violations.add(request, problems)
