"""Web pages for people: the partner inbox and the case manager's worklist, plan review and
caseloads (server-rendered with Jinja2, plain forms, no JavaScript), with sign-in by user account.

    install_web(app)     # once, by the composition root: routes under /web, static files, keys
    add_user(session, "ann", "…", "partner", "Organization/harbor")   # `fhir-gateway users add`

Every page maps its user to a Caller (role and Organization, as an API client) and reads and
writes only through ``services.resources`` and the store's search with that Caller.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from fhir_gateway.web._caseload import CASE_MANAGER_ACCOUNTS, ensure_practitioner
from fhir_gateway.web._entry import BrowserHome
from fhir_gateway.web._inbox_routes import router as inbox_router
from fhir_gateway.web._measure_routes import router as measure_router
from fhir_gateway.web._patient_routes import router as patient_router
from fhir_gateway.web._reasons import REJECT_REASONS, REJECT_SYSTEM
from fhir_gateway.web._relapse_routes import router as relapse_router
from fhir_gateway.web._render import STATIC
from fhir_gateway.web._routes import router
from fhir_gateway.web._safety_plan_routes import router as safety_plan_router
from fhir_gateway.web._sessions import SessionKeys
from fhir_gateway.web._throttle import AddressThrottle
from fhir_gateway.web._users import User, add_user, get_user, list_users, remove_user, sign_in
from fhir_gateway.web._worklist_routes import router as worklist_router

__all__ = [
    "CASE_MANAGER_ACCOUNTS",
    "REJECT_REASONS",
    "REJECT_SYSTEM",
    "User",
    "add_user",
    "ensure_practitioner",
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
    app.include_router(worklist_router)  # the case manager's worklist, plan review, caseloads
    app.add_middleware(BrowserHome)  # a browser asking for / lands on /web
    app.include_router(patient_router)  # the patient page and its consent and alert forms
    app.include_router(relapse_router)  # the patient page's warning-signs form
    app.include_router(measure_router)  # questionnaires recorded from the patient page
    app.include_router(inbox_router)  # the partner inbox and the case manager's referral pages
    app.include_router(safety_plan_router)  # the printable safety plan, its form, sharing it
