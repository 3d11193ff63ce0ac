"""Shared pieces of the workflow and notification tests: callers chosen per request (until the
security layer authenticates them), a small partner directory, a settable clock, and a real HTTP
receiver on loopback whose answers the test scripts (fail, time out, 429, 500, down)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fastapi import FastAPI, Request
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware

from fhir_gateway import clock
from fhir_gateway.context import Caller

FHIR = {"Content-Type": "application/fhir+json"}
SERVICE_SYSTEM = "http://fhir-gateway.org/fhir/CodeSystem/referral-service"
TASK_CODE = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}


# -- callers --------------------------------------------------------------------------------------


def install_test_callers(app: FastAPI) -> None:
    """``X-Test-Role`` / ``X-Test-Org`` choose the Caller of a request (the security layer's job)."""

    async def caller_from_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        role = request.headers.get("x-test-role")
        if role:
            request.state.caller = Caller(
                client_id=f"test-{role}",
                role=role,
                organization=request.headers.get("x-test-org"),
                scopes=frozenset({"system/*.*"}),
            )
        return await call_next(request)

    # innermost, so that it speaks after the security middleware (authentication off in tests)
    app.user_middleware.append(Middleware(BaseHTTPMiddleware, dispatch=caller_from_headers))


def partner(org: str) -> dict[str, str]:
    return {**FHIR, "X-Test-Role": "partner", "X-Test-Org": f"Organization/{org}"}


CASE_MANAGER = {**FHIR, "X-Test-Role": "case-manager"}


# -- a partner directory and a referral -----------------------------------------------------------


def directory(
    client: Any,
    partners: dict[str, str],
    *,
    service: str = "housing-support",
    endpoints: dict[str, str] | None = None,
) -> None:
    """Organizations offering ``service``, ranked by name (``partners``: id → name)."""
    for org, name in partners.items():
        put(client, {"resourceType": "Organization", "id": org, "active": True, "name": name})
        hs: dict[str, Any] = {
            "resourceType": "HealthcareService",
            "id": f"{org}-service",
            "active": True,
            "providedBy": {"reference": f"Organization/{org}"},
            "name": f"{name} service",
            "type": [{"coding": [{"system": SERVICE_SYSTEM, "code": service}]}],
        }
        if endpoints and org in endpoints:
            put(
                client,
                {
                    "resourceType": "Endpoint",
                    "id": f"{org}-fhir",
                    "status": "active",
                    "connectionType": {
                        "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                        "code": "hl7-fhir-rest",
                    },
                    "managingOrganization": {"reference": f"Organization/{org}"},
                    "payloadType": [{"text": "any"}],
                    "address": endpoints[org],
                },
            )
            hs["endpoint"] = [{"reference": f"Endpoint/{org}-fhir"}]
        put(client, hs)


def referral(
    client: Any,
    *,
    owner: str | None,
    status: str = "requested",
    sr: str = "sr1",
    task: str = "t1",
    plan: str | None = None,
    service: str = "housing-support",
) -> dict[str, Any]:
    put(client, {"resourceType": "Patient", "id": "p1", "name": [{"family": "Doe"}]})
    request = {
        "resourceType": "ServiceRequest",
        "id": sr,
        "status": "active",
        "intent": "order",
        "code": {"coding": [{"system": SERVICE_SYSTEM, "code": service}], "text": service},
        "subject": {"reference": "Patient/p1"},
        "requester": {"reference": "Organization/care-coordination"},
    }
    if plan:
        request["basedOn"] = [{"reference": f"CarePlan/{plan}"}]
    put(client, request)
    doc: dict[str, Any] = {
        "resourceType": "Task",
        "id": task,
        "status": status,
        "intent": "order",
        "code": TASK_CODE,
        "focus": {"reference": f"ServiceRequest/{sr}"},
        "for": {"reference": "Patient/p1"},
        "requester": {"reference": "Organization/care-coordination"},
        "authoredOn": "2025-03-10T12:00:00Z",
        "restriction": {"period": {"end": "2025-03-17"}},
    }
    if owner:
        doc["owner"] = {"reference": f"Organization/{owner}"}
    return put(client, doc)


def put(
    client: Any, resource: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = client.put(
        f"/{resource['resourceType']}/{resource['id']}", json=resource, headers=headers or FHIR
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


def read(client: Any, ref: str) -> dict[str, Any]:
    response = client.get(f"/{ref}")
    assert response.status_code == 200, response.text
    return response.json()


def search(client: Any, query: str) -> list[dict[str, Any]]:
    response = client.get(f"/{query}")
    assert response.status_code == 200, response.text
    return [
        e["resource"]
        for e in response.json().get("entry", [])
        if e.get("search", {}).get("mode") != "outcome"
    ]


def transitions(provenance: dict[str, Any], task: str | None = None) -> list[str]:
    """The referral transitions a Provenance records ("from → to"), of ``task`` ("Task/id") or all."""
    out = []
    for ext in provenance.get("extension", []):
        parts = {p["url"]: p for p in ext.get("extension", [])}
        target = parts.get("target", {}).get("valueReference", {}).get("reference", "")
        if "to" in parts and (task is None or target.split("/_history")[0] == task):
            before = parts.get("from", {}).get("valueCode", "(new)")
            out.append(f"{before} → {parts['to']['valueCode']}")
    return out


# -- time -------------------------------------------------------------------------------------------


class ManualClock:
    """The gateway's clock, moved by the test (no sleeping)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
        clock.set_clock(lambda: self.now)

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


# -- a real HTTP receiver -------------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int | None  # None: the receiver did not answer (a timeout)

    @property
    def delivery(self) -> str | None:
        return self.headers.get("x-fhir-gateway-delivery")


Script = Callable[
    [Received, int], tuple[int, dict[str, str]] | None
]  # (request, nth for this delivery) → answer


@dataclass
class Receiver:
    """A loopback HTTP server. ``script`` decides each answer; returning None holds the request
    longer than the worker waits (a timeout). ``stop()``/``start()`` take it down and up again on
    the same port."""

    script: Script = lambda request, nth: (200, {})
    hold: float = 1.0
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Received(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    None,
                )
                with receiver._lock:
                    nth = sum(
                        1
                        for r in receiver.received
                        if r.delivery == request.delivery and r.delivery
                    )
                    answer = receiver.script(request, nth)
                    request.answered = answer[0] if answer else None
                    receiver.received.append(request)
                if answer is None:
                    time.sleep(receiver.hold)
                    self.close_connection = True
                    return
                status, headers = answer
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")  # no kept-alive connection outlives stop()
                self.end_headers()
                self.close_connection = True

            do_POST = do_PUT = do_GET = _handle

            def log_message(self, *_: Any) -> None:
                pass

        if not self.port:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                self.port = sock.getsockname()[1]
        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        # stop() waits for the serving loop to look at its flag: every 0.05 s, not the 0.5 s default
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def successes(self) -> list[Received]:
        return [r for r in self.received if r.answered is not None and 200 <= r.answered < 300]
