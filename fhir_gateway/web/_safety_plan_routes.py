"""The safety plan's routes: the printable plan (case managers, and partners with the rights to see
it: a plan hidden from the user is "not found"), the form that writes or updates it, and "send to
family". Thin: each calls a use case of ``_safety_plan`` with the user's Caller.

    GET  /web/patients/{id}/safety-plan                 the printout (``?for=RELATED_PERSON_ID``:
                                                        printed for a family member, with consent)
    GET  /web/patients/{id}/safety-plan/edit            the form, filled with the current plan
    POST /web/patients/{id}/safety-plan/edit            a completed response → the plan's new version
    POST /web/patients/{id}/safety-plan/share/{person}  the plan to a family member, with consent
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from fhir_gateway.context import Caller
from fhir_gateway.web._callers import CASE_TEAM, PARTNER
from fhir_gateway.web._render import render
from fhir_gateway.web._routes import CaseTeamDep, WebRoute, _role, posted_form
from fhir_gateway.web._safety_plan import plan_form, printable, save_plan, send_to_family

__all__ = ["router"]

router = APIRouter(prefix="/web", route_class=WebRoute, include_in_schema=False)
ReaderDep = Annotated[Caller, Depends(_role(CASE_TEAM | PARTNER, "safety plan"))]
_DONE = {"saved": "Safety plan saved. This is the plan to print for the patient."}
_ID_LIMIT = 64  # a FHIR id's length: anything longer names nothing


@router.get("/patients/{patient_id}/safety-plan")
def printed(
    request: Request, patient_id: str, caller: ReaderDep, done: str = "", sent: str = ""
) -> Response:
    app = request.app.state
    person = request.query_params.get("for", "")[:_ID_LIMIT] or None
    plan = app.database.read(printable, caller, app.settings, patient_id, person)
    notice = _DONE.get(done, "")
    named = next((f.name for f in plan.family if f.person == f"RelatedPerson/{sent}"), None)
    if named:
        notice = f"The safety plan was sent to {named} through the family messages."
    return render(
        request,
        "safety_plan.html",
        {"plan": plan, "done": notice, "case_team": caller.role in CASE_TEAM},
    )


def _form_page(request: Request, form: Any, status: int = 200) -> Response:
    return render(request, "safety_plan_form.html", {"form": form}, status=status)


@router.get("/patients/{patient_id}/safety-plan/edit")
def edit(request: Request, patient_id: str, caller: CaseTeamDep) -> Response:
    app = request.app.state
    return _form_page(request, app.database.read(plan_form, caller, app.settings, patient_id))


@router.post("/patients/{patient_id}/safety-plan/edit")
async def save(request: Request, patient_id: str, caller: CaseTeamDep) -> Response:
    form = await posted_form(request)
    app = request.app.state
    saved = await run_in_threadpool(
        app.database.write, save_plan, caller, app.settings, patient_id, form
    )
    if not saved.ok:
        return _form_page(request, saved.form, status=422)
    return RedirectResponse(f"/web/patients/{patient_id}/safety-plan?done=saved", status_code=303)


@router.post("/patients/{patient_id}/safety-plan/share/{person_id}")
async def share(request: Request, patient_id: str, person_id: str, caller: CaseTeamDep) -> Response:
    await posted_form(request)
    app = request.app.state
    decision = await run_in_threadpool(
        app.database.write, send_to_family, caller, app.settings, patient_id, person_id
    )
    if not decision:
        return render(
            request,
            "error.html",
            {"status": 422, "title": "Not shared", "message": decision.reason},
            status=422,
        )
    return RedirectResponse(
        f"/web/patients/{patient_id}/safety-plan?sent={person_id}", status_code=303
    )
