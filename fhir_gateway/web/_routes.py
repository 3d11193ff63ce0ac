"""The web pages' routes: thin; they sign people in, check the page's roles, and call the use
cases with the user's Caller. The partner inbox and the referral pages (``_inbox_routes``), the
worklist (``_worklist_routes``) and the patient page (``_patient_routes``) have their own
routers built on the same pieces (``WebRoute``, the role dependencies, ``posted_form``,
``form_version``).

``WebRoute`` turns every error into a readable page (never a traceback) and records one AuditEvent
per request with the user as the agent, as the security middleware does for API calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from fhir_gateway.context import Caller
from fhir_gateway.errors import Forbidden, GatewayError, InvalidRequest, TooManyRequests
from fhir_gateway.web._callers import CASE_TEAM, PARTNER, caller_of
from fhir_gateway.web._render import error_page, keys, render, set_cookie
from fhir_gateway.web._sessions import CSRF_COOKIE, SESSION_COOKIE
from fhir_gateway.web._users import User, get_user, sign_in

__all__ = ["router", "WebRoute", "PartnerDep", "CaseTeamDep", "posted_form", "form_version"]

log = logging.getLogger("fhir_gateway.web")


class _SignInRequired(Exception):
    pass


class WebRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handle(request)
            except _SignInRequired:
                response = RedirectResponse("/web/login", status_code=303)
            except GatewayError as exc:
                response = error_page(request, exc.status, exc.message)
            except HTTPException as exc:
                response = error_page(request, exc.status_code, str(exc.detail))
            except Exception:
                log.exception("web page %s failed", request.url.path)
                response = error_page(
                    request,
                    500,
                    "Something went wrong on our side. Please try again; "
                    "if it keeps happening, tell your administrator.",
                )
            await run_in_threadpool(_audit, request, response.status_code)
            return response

        return route


router = APIRouter(prefix="/web", route_class=WebRoute, include_in_schema=False)


def _audit(request: Request, status: int) -> None:
    caller: Caller | None = getattr(request.state, "web_caller", None)
    request.app.state.security.auditor.record_request(
        method=request.method,
        path=request.url.path,
        query=request.url.query,
        status=status,
        caller=caller,
        address=request.client.host if request.client else None,
    )


# -- who is asking -----------------------------------------------------------------------------------


def _signed_in(request: Request) -> Caller:
    found = keys(request).read_session(request.cookies.get(SESSION_COOKIE))
    if found is None:
        raise _SignInRequired
    user = request.app.state.database.read(get_user, found[0])
    if user is None or user.fingerprint != found[1]:
        raise _SignInRequired  # removed, or the password changed since
    caller = caller_of(user, request.client.host if request.client else None)
    request.state.web_user, request.state.web_caller = user, caller
    return caller


def _role(roles: frozenset[str], page: str) -> Callable[[Request], Caller]:
    def check(request: Request) -> Caller:
        caller = _signed_in(request)
        if caller.role not in roles or (roles == PARTNER and not caller.organization):
            raise Forbidden(f"Your account ({caller.role}) may not use the {page}.")
        return caller

    return check


PartnerDep = Annotated[Caller, Depends(_role(PARTNER, "partner inbox"))]
CaseTeamDep = Annotated[Caller, Depends(_role(CASE_TEAM, "case-manager pages"))]


async def _form(request: Request) -> dict[str, str]:
    """The posted form, after the CSRF check (every POST here goes through this)."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise InvalidRequest("This page accepts only its own forms.")
    form = dict(
        parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    )
    if not keys(request).csrf_ok(request.cookies.get(CSRF_COOKIE), form.get("csrf_token")):
        raise Forbidden(
            "This form has expired or did not come from this site. Reload the page and try again."
        )
    return form


posted_form = _form  # for the other routers of the web pages


def form_version(form: dict[str, str]) -> int:
    """The version of the resource the form was drawn from (the write is refused if it changed)."""
    try:
        return int(form.get("version", ""))
    except ValueError as exc:
        raise InvalidRequest(
            "The form lacks the version it was drawn from; reload the page."
        ) from exc


# -- sign-in -----------------------------------------------------------------------------------------


@router.get("")
@router.get("/")
def home(request: Request) -> Response:
    caller = _signed_in(request)
    return RedirectResponse(
        "/web/inbox" if caller.role in PARTNER else "/web/worklist", status_code=303
    )


@router.get("/login")
def login_page(request: Request) -> Response:
    return render(request, "login.html")


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _form(request)
    address = request.client.host if request.client else None
    throttle = request.app.state.web_throttle
    if throttle.blocked(address):
        raise TooManyRequests(
            "Too many failed sign-ins from your network; wait a few minutes and try again."
        )
    user: User | None = await run_in_threadpool(
        request.app.state.database.write,
        sign_in,
        form.get("username", "").strip(),
        form.get("password", ""),
    )
    if user is None:
        throttle.failed(address)
        return render(
            request,
            "login.html",
            {"error": "Wrong user name or password.", "username": form.get("username", "")},
            status=401,
        )
    response = RedirectResponse("/web/", status_code=303)
    set_cookie(
        request,
        response,
        SESSION_COOKIE,
        keys(request).session_cookie(user.username, user.fingerprint),
        max_age=keys(request).max_age,
    )
    set_cookie(
        request, response, CSRF_COOKIE, keys(request).new_nonce(), max_age=None
    )  # new session, new nonce
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await _form(request)
    response = RedirectResponse("/web/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/web")
    return response


# -- case-manager dashboard ------------------------------------------------------------------------------


@router.get("/dashboard")
def dashboard_page(request: Request, caller: CaseTeamDep) -> Response:
    return RedirectResponse("/web/worklist", status_code=303)  # the worklist replaced it
