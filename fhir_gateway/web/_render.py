"""Pages from Jinja2 templates: every page gets the signed-in user, a CSRF token for its forms
(setting the CSRF nonce cookie when the browser has none yet) and protective headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from fhir_gateway.fhir.references import Reference
from fhir_gateway.store import repository
from fhir_gateway.web._reasons import REJECT_REASONS
from fhir_gateway.web._sessions import CSRF_COOKIE, SessionKeys

__all__ = ["render", "error_page", "set_cookie", "TEMPLATES", "STATIC"]

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
_templates = Jinja2Templates(directory=str(TEMPLATES))  # autoescapes .html
_templates.env.globals["reject_reasons"] = REJECT_REASONS
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def keys(request: Request) -> SessionKeys:
    return request.app.state.web_keys  # type: ignore[no-any-return]


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200
) -> Response:
    nonce = request.cookies.get(CSRF_COOKIE)
    fresh = nonce is None
    if nonce is None:
        nonce = SessionKeys.new_nonce()
    user = getattr(request.state, "web_user", None)
    ctx = {
        "user": user,
        "user_organization": _organization_name(request, user),
        "csrf_token": keys(request).csrf_token(nonce),
        **(context or {}),
    }
    response = _templates.TemplateResponse(request, name, ctx, status_code=status, headers=_HEADERS)
    if fresh:
        set_cookie(request, response, CSRF_COOKIE, nonce, max_age=None)
    return response


def _organization_name(request: Request, user: Any) -> str | None:
    """The name of the organisation the user acts for, as the header shows it."""
    res_id = Reference.id_of(getattr(user, "organization", None), "Organization")
    if res_id is None:
        return None
    stored = request.app.state.database.read(repository.read, "Organization", res_id)
    name = (stored.content.get("name") if stored and not stored.deleted else None) or None
    return str(name) if name else None


def error_page(request: Request, status: int, message: str) -> Response:
    titles = {
        400: "The request could not be used",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict",
        412: "Changed meanwhile",
        413: "Too large",
        422: "Not possible",
        429: "Too many attempts",
    }
    return render(
        request,
        "error.html",
        {"title": titles.get(status, "Something went wrong"), "message": message, "status": status},
        status=status,
    )


def set_cookie(
    request: Request, response: Response, name: str, value: str, *, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/web",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
