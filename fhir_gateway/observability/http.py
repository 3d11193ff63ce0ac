"""The outermost ASGI layer: health answers before any gate, and for every other request a
request id, a server span (continuing the caller's ``traceparent``) and the HTTP metrics, all
named by the route template."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import anyio
import orjson
from fastapi import APIRouter, Request, Response
from opentelemetry.trace import SpanKind
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_gateway.api.deps import CallerDep
from fhir_gateway.errors import Forbidden
from fhir_gateway.observability.health import LIVE, READY, health_answer
from fhir_gateway.observability.logs import correlated
from fhir_gateway.observability.metrics import CONTENT_TYPE_LATEST, record_http, render
from fhir_gateway.observability.tracing import extract_context, span
from fhir_gateway.store.db import Database

__all__ = ["ObservabilityMiddleware", "REQUEST_ID_HEADER", "metrics_router"]

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _request_id(headers: dict[str, str]) -> str:
    given = headers.get("x-request-id", "")
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "path", None) or "unmatched")


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, database: Database) -> None:
        self.app = app
        self.database = database

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in (LIVE, READY):
            await self._health(scope["path"], send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers") or []}
        request_id = _request_id(headers)
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        status = 500
        started = time.perf_counter()
        recorded = False

        def record() -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                record_http(_route(scope), method, status, time.perf_counter() - started)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            elif not message.get("more_body", False):
                # Counted before the last byte leaves: a client that reads /metrics
                # right after its response (from any worker) sees its request.
                record()
            await send(message)

        with (
            correlated(f"request:{request_id}"),
            span(
                method,
                kind=SpanKind.SERVER,
                context=extract_context(headers),
                attributes={"http.request.method": method, "fhir_gateway.request_id": request_id},
            ) as current,
        ):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                route = _route(scope)
                current.update_name(f"{method} {route}")
                current.set_attribute("http.route", route)
                current.set_attribute("http.response.status_code", status)
                record()

    async def _health(self, path: str, send: Send) -> None:
        answer: Any = (
            health_answer(path, self.database)
            if path == LIVE
            else await anyio.to_thread.run_sync(health_answer, path, self.database)
        )
        status, body = answer
        data = orjson.dumps(body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})


async def _metrics(request: Request, caller: CallerDep) -> Response:
    if caller.role not in ("admin", "system"):
        raise Forbidden("Only an admin client may read /metrics")
    body = await run_in_threadpool(render, request.app.state.database)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def metrics_router() -> APIRouter:
    """``GET /metrics`` on the API port, for admin clients (the gate has checked the token)."""
    router = APIRouter(tags=["operations"])
    router.add_api_route(
        "/metrics", _metrics, methods=["GET"], summary="Prometheus metrics (admins only)"
    )
    return router
