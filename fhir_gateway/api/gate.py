"""The gate every HTTP request passes: authentication, rate limit, route roles, audit.

A pure ASGI middleware (no per-request task or body buffering): it reads the ``Authorization``
header, puts the Caller where ``api.deps.get_caller`` finds it (``request.state.caller``), and
records the request's audit row before the response starts: a crash never loses the record of
what was disclosed. The hottest routes record it themselves (``audit_now``) on the worker thread
they already run on, so that the gate does not hop to one for it. Public paths (the CapabilityStatement, the
SMART configuration, the token endpoint, health and API docs) need no token; the token endpoint
audits itself, since only it knows which client asked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_gateway.api.responses import fhir_json
from fhir_gateway.context import Caller
from fhir_gateway.errors import Forbidden, GatewayError, TooManyRequests, Unauthorized
from fhir_gateway.security import ROUTE_ROLES

if TYPE_CHECKING:
    from fhir_gateway.security import SecurityService
    from fhir_gateway.services.resources import WriteResult

__all__ = [
    "SecurityMiddleware",
    "PUBLIC_PATHS",
    "TOKEN_PATH",
    "WEB_PREFIX",
    "audit_now",
    "audited_write",
    "audit_committed",
]

P = ParamSpec("P")

TOKEN_PATH = "/auth/token"
WEB_PREFIX = "/web"
PUBLIC_PATHS = frozenset(
    {
        "/metadata",
        "/.well-known/smart-configuration",
        TOKEN_PATH,
        "/_health",
        "/_docs",
        "/_openapi.json",
    }
)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or []:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else ""
    return None


def _is_web(path: str) -> bool:
    # People's pages (fhir_gateway.web) sign in with a session cookie, not a token: they
    # authenticate, check roles and audit themselves; here they are rate-limited by address.
    return path == WEB_PREFIX or path.startswith(WEB_PREFIX + "/")


def _route_roles(path: str) -> frozenset[str] | None:
    for prefix, roles in ROUTE_ROLES.items():
        if path == prefix or path.startswith(prefix + "/"):
            return roles
    return None


class _Audit:
    """A request's audit row, written once: by the route (``audit_now``) or at response start."""

    __slots__ = ("middleware", "scope", "caller", "address", "done")

    def __init__(
        self, middleware: SecurityMiddleware, scope: Scope, caller: Caller, address: str | None
    ) -> None:
        self.middleware, self.scope, self.caller, self.address = middleware, scope, caller, address
        self.done = False

    def __call__(self, status: int, session: Session | None = None, *, wait: bool = True) -> bool:
        """Record the row; False when ``wait`` is off and it would have to wait (not recorded)."""
        if self.done:
            return True
        stored = self.middleware._audit(
            self.scope, status, self.caller, self.address, session, wait=wait
        )
        self.done = stored and session is None  # in a write's transaction: done once it commits
        return stored


def audit_now(request: Request, status: int, *, wait: bool = True) -> bool:
    """Record the request's audit row now, as answering ``status``: for a route that knows its
    answer before it returns it. Without ``wait`` (on the event loop), False when it was not
    recorded because that would wait for SQLite's write lock."""
    audit: _Audit | None = request.scope.get("state", {}).get("audit")
    return audit(status, wait=wait) if audit is not None else True


def audited_write(
    request: Request, fn: Callable[Concatenate[Session, P], WriteResult]
) -> Callable[Concatenate[Session, P], WriteResult]:
    """``fn`` (a write, for ``Database.write``) that also inserts the request's audit row, with
    the write's status, in the write's transaction. Call ``audit_committed`` once it committed;
    should it not commit, the gate records the failure when the error response starts."""
    audit: _Audit | None = request.scope.get("state", {}).get("audit")

    def write(session: Session, /, *args: P.args, **kwargs: P.kwargs) -> WriteResult:
        result = fn(session, *args, **kwargs)
        if audit is not None:
            audit(result.status, session)
        return result

    return write


def audit_committed(request: Request) -> None:
    """The write of ``audited_write`` committed, and its audit row with it."""
    audit: _Audit | None = request.scope.get("state", {}).get("audit")
    if audit is not None:
        audit.done = True


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, service: SecurityService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        address = (scope.get("client") or (None,))[0]
        if path in PUBLIC_PATHS or _is_web(path):
            if path == TOKEN_PATH or _is_web(path):
                await self._limited(f"address:{address}", scope, receive, send, None)
            else:
                await self.app(scope, receive, send)
            return
        try:
            caller = self._caller(scope, address)
        except GatewayError as exc:
            await self._refuse(exc, scope, receive, send, None, address)
            return
        await self._limited(caller.client_id, scope, receive, send, caller)

    def _caller(self, scope: Scope, address: str | None) -> Caller:
        service = self.service
        if not service.settings.auth_enabled:
            return service.insecure_caller(address)
        token = _bearer(scope)
        if not token:
            raise Unauthorized(
                "This server needs a SMART backend-services access token (Authorization: Bearer …); "
                "see /.well-known/smart-configuration",
                headers={"WWW-Authenticate": 'Bearer realm="fhir-gateway"'},
            )
        caller = service.tokens.authenticate(token, address)
        roles = _route_roles(scope["path"])
        if roles is not None and caller.role not in roles and caller.role != "system":
            raise Forbidden(f"A {caller.role} client may not use {scope['path']}")
        return caller

    async def _limited(
        self, key: str, scope: Scope, receive: Receive, send: Send, caller: Caller | None
    ) -> None:
        address = (scope.get("client") or (None,))[0]
        wait = self.service.limiter.take(key)
        if wait is not None:
            retry = str(max(1, int(wait + 0.999)))
            exc = TooManyRequests(
                f"Too many requests; retry after {retry} s", headers={"Retry-After": retry}
            )
            await self._refuse(exc, scope, receive, send, caller, address)
            return
        if caller is None:
            await self.app(scope, receive, send)
            return
        audit = _Audit(self, scope, caller, address)
        state = scope.setdefault("state", {})
        state["caller"], state["audit"] = caller, audit

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and not audit.done:
                await run_in_threadpool(audit, message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if not audit.done:  # no response started: the app failed
                await run_in_threadpool(audit, 500)

    async def _refuse(
        self,
        exc: GatewayError,
        scope: Scope,
        receive: Receive,
        send: Send,
        caller: Caller | None,
        address: str | None,
    ) -> None:
        await run_in_threadpool(self._audit, scope, exc.status, caller, address)
        response = fhir_json(exc.outcome(), exc.status, exc.headers)
        await response(scope, receive, send)

    def _audit(
        self,
        scope: Scope,
        status: int,
        caller: Caller | None,
        address: str | None,
        session: Session | None = None,
        *,
        wait: bool = True,
    ) -> bool:
        query: Any = scope.get("query_string") or b""
        return self.service.auditor.record_request(
            method=scope["method"],
            path=scope["path"],
            query=query.decode("latin-1"),
            status=status,
            caller=caller,
            address=address,
            session=session,
            wait=wait,
        )
