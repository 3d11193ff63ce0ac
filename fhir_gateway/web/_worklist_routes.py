"""Routes of the case manager's pages: the worklist (with patient search), plan review, choosing a
partner for one referral, and caseloads. Thin: they read the form, call the use cases in
``_worklist``, ``_plan_review`` and ``_caseload`` with the user's Caller inside one transaction,
and send the browser on (POST, then redirect: a reload never repeats a change)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from fhir_gateway.context import Caller
from fhir_gateway.errors import NotFound
from fhir_gateway.web import _caseload, _plan_review, _worklist
from fhir_gateway.web._display import Display, Names
from fhir_gateway.web._patient_search import find_patients
from fhir_gateway.web._plan_review import Author
from fhir_gateway.web._render import render
from fhir_gateway.web._routes import CaseTeamDep, WebRoute, form_version, posted_form

__all__ = ["router"]

router = APIRouter(prefix="/web", route_class=WebRoute, include_in_schema=False)

_DONE = {
    "approved": "Plan approved.",
    "declined": "Plan declined: its referrals were withdrawn.",
    "dropped": "Activity dropped from the plan.",
    "added": "Activity added to the plan.",
    "partner": "Partner changed.",
    "assigned": "The referral has a partner now.",
    "due": "Due date moved.",
    "case-manager": "Case manager assigned.",
    "moved": "Caseload moved.",
}
_BACK = re.compile(r"^/web/(plans/[A-Za-z0-9\-.]{1,64}|worklist)$")


def _display(request: Request) -> Display:
    return Display.for_settings(request.app.state.settings)


def _page(request: Request, value: str | None) -> int:
    try:
        return max(1, int(value or "1"))
    except ValueError:
        return 1


async def _write(request: Request, work: Callable[..., Any], *args: Any) -> Any:
    return await run_in_threadpool(request.app.state.database.write, work, *args)


def _author(session: Session, caller: Caller, username: str) -> Author:
    ref = _caseload.ensure_practitioner(session, caller, username)
    return Author(ref, Names(session, caller).of(ref, missing=username))


def _as_user(request: Request, work: Callable[..., Any]) -> Callable[..., Any]:
    """``work(session, caller, author, *args)``: the change with the signed-in user as its author."""
    username = request.state.web_user.username

    def run(session: Session, caller: Caller, *args: Any) -> Any:
        return work(session, caller, _author(session, caller, username), *args)

    return run


def _back(form: dict[str, str], done: str, **extra: Any) -> Response:
    target = form.get("back", "")
    if not _BACK.match(target):
        target = "/web/worklist"
    return RedirectResponse(f"{target}?{urlencode({'done': done, **extra})}", status_code=303)


# -- the worklist -------------------------------------------------------------------------------------


@router.get("/worklist")
def worklist_page(
    request: Request,
    caller: CaseTeamDep,
    mine: str | None = None,
    case_manager: str | None = None,
    partner: str | None = None,
    state: str | None = None,
    page: str | None = None,
    q: str | None = None,
    done: str | None = None,
) -> Response:
    user = request.state.web_user
    keeper = user.username if mine == "1" else case_manager
    filters = _worklist.Filters(
        mine=_caseload.practitioner_ref(keeper) if keeper else None,
        partner=partner or None,
        state=state if state in _worklist.STATE_FILTERS else None,
        page=_page(request, page),
    )
    shown = _display(request)
    database = request.app.state.database
    board = database.read(_worklist.worklist, caller, filters, shown, request.app.state.settings)
    found = database.read(find_patients, caller, q, _page(request, page)) if q else None
    query = {
        "mine": "1" if mine == "1" else "",
        "case_manager": case_manager if keeper and mine != "1" else "",
        "partner": partner or "",
        "state": filters.state or "",
    }
    return render(
        request,
        "worklist.html",
        {
            "board": board,
            "found": found,
            "q": q or "",
            "filters": filters,
            "query": {k: v for k, v in query.items() if v},
            "states": list(_worklist.states()),
            "done": _DONE.get(done or ""),
            "approved": {k: request.query_params.get(k) for k in ("sent", "open", "consent")},
        },
    )


# -- plan review ----------------------------------------------------------------------------------------


@router.get("/plans/{plan_id}")
def plan_page(
    request: Request, plan_id: str, caller: CaseTeamDep, done: str | None = None
) -> Response:
    shown = _display(request)
    view = request.app.state.database.read(_plan_review.review, caller, plan_id, shown)
    if view is None:
        raise NotFound(f"There is no care plan {plan_id}.")
    return render(request, "plan.html", {"plan": view, "done": _DONE.get(done or "")})


@router.post("/plans/{plan_id}/approve")
async def approve_plan(request: Request, plan_id: str, caller: CaseTeamDep) -> Response:
    form = await posted_form(request)
    outcome = await _write(request, _plan_review.approve, caller, plan_id, form_version(form))
    return _back({"back": "/web/worklist"}, "approved", **outcome)


@router.post("/plans/{plan_id}/decline")
async def decline_plan(request: Request, plan_id: str, caller: CaseTeamDep) -> Response:
    form = await posted_form(request)

    def work(session: Session, caller: Caller, author: Author) -> None:
        _plan_review.decline(
            session, caller, plan_id, form_version(form), form.get("reason", ""), author
        )

    await _write(request, _as_user(request, work), caller)
    return _back({"back": "/web/worklist"}, "declined")


@router.post("/plans/{plan_id}/activities/{request_id}/drop")
async def drop_activity(
    request: Request, plan_id: str, request_id: str, caller: CaseTeamDep
) -> Response:
    form = await posted_form(request)

    def work(session: Session, caller: Caller, author: Author) -> None:
        _plan_review.drop(session, caller, plan_id, request_id, form.get("reason", ""), author)

    await _write(request, _as_user(request, work), caller)
    return _back({"back": f"/web/plans/{plan_id}"}, "dropped")


@router.post("/plans/{plan_id}/activities")
async def add_activity(request: Request, plan_id: str, caller: CaseTeamDep) -> Response:
    form = await posted_form(request)
    settings = request.app.state.settings
    await _write(request, _plan_review.add, caller, plan_id, form.get("definition", ""), settings)
    return _back({"back": f"/web/plans/{plan_id}"}, "added")


@router.post("/plans/{plan_id}/case-manager")
async def assign_case_manager(request: Request, plan_id: str, caller: CaseTeamDep) -> Response:
    form = await posted_form(request)
    await _write(request, _caseload.assign, caller, plan_id, form.get("username", ""))
    return _back({"back": f"/web/plans/{plan_id}"}, "case-manager")


# -- one referral: its partner, its due date ---------------------------------------------------------


@router.get("/referrals/{task_id}/partner")
def partner_page(request: Request, task_id: str, caller: CaseTeamDep) -> Response:
    shown = _display(request)
    view = request.app.state.database.read(_plan_review.referral_partner, caller, task_id, shown)
    if view is None:
        raise NotFound(f"There is no referral {task_id}.")
    return render(request, "referral_partner.html", {"referral": view})


@router.post("/referrals/{task_id}/partner")
async def choose_partner(request: Request, task_id: str, caller: CaseTeamDep) -> Response:
    form = await posted_form(request)
    await _write(
        request,
        _plan_review.choose_partner,
        caller,
        task_id,
        form_version(form),
        form.get("organization", ""),
    )
    back = form.get("back", "")
    return _back(form, "partner" if back.startswith("/web/plans/") else "assigned")


@router.post("/referrals/{task_id}/due")
async def move_due(request: Request, task_id: str, caller: CaseTeamDep) -> Response:
    form = await posted_form(request)
    shown = _display(request)

    def work(session: Session, caller: Caller, author: Author) -> None:
        _plan_review.move_due(
            session,
            caller,
            task_id,
            form_version(form),
            form.get("date", ""),
            form.get("reason", ""),
            author,
            shown,
        )

    await _write(request, _as_user(request, work), caller)
    return _back(form, "due")


# -- caseloads --------------------------------------------------------------------------------------------


@router.get("/caseloads")
def caseloads_page(request: Request, caller: CaseTeamDep, done: str | None = None) -> Response:
    database = request.app.state.database
    rows = database.read(_caseload.overview, caller)
    people = [(r.username, r.name) for r in rows if r.username]
    return render(
        request,
        "caseloads.html",
        {"rows": rows, "people": people, "done": _DONE.get(done or "")},
    )


@router.post("/caseloads/move")
async def move_caseload(request: Request, caller: CaseTeamDep) -> Response:
    form = await posted_form(request)
    await _write(request, _caseload.move_caseload, caller, form.get("from", ""), form.get("to", ""))
    return RedirectResponse("/web/caseloads?done=moved", status_code=303)
