"""Web pages for people: the partner inbox and the case-manager dashboard (server-rendered with
Jinja2, plain forms, no JavaScript), with sign-in by user account.

    install_web(app)     # once, by the composition root: routes under /web, static files, keys
    add_user(session, "ann", "…", "partner", "Organization/harbor")   # `fhir-gateway users add`

Every page maps its user to a Caller (role and Organization, as an API client) and reads and
writes only through ``services.resources`` and the store's search with that Caller.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from fhir_gateway.web._inbox_routes import router as inbox_router
from fhir_gateway.web._reasons import REJECT_REASONS, REJECT_SYSTEM
from fhir_gateway.web._render import STATIC
from fhir_gateway.web._routes import router
from fhir_gateway.web._sessions import SessionKeys
from fhir_gateway.web._throttle import AddressThrottle
from fhir_gateway.web._users import User, add_user, get_user, list_users, remove_user, sign_in

__all__ = [
    "REJECT_REASONS",
    "REJECT_SYSTEM",
    "User",
    "add_user",
    "get_user",
    "install_web",
    "list_users",
    "remove_user",
    "router",
    "sign_in",
]


def install_web(app: FastAPI) -> None:
    settings = app.state.settings
    app.state.web_keys = SessionKeys(app.state.database, int(settings.web_session_hours * 3600))
    app.state.web_throttle = AddressThrottle()
    app.mount("/web/static", StaticFiles(directory=str(STATIC)), name="web-static")
    app.include_router(router)
    app.include_router(inbox_router)  # the partner inbox and the case manager's referral pages
