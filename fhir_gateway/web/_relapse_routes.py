"""The relapse forms. The patient page's warning-signs form (case managers): what the patient,
the family or a partner noticed, against the patient's own relapse-prevention plan. The partner
inbox's (``/web/inbox/{task_id}/warning-signs``): what a partner treating the patient noticed,
as itself (``_inbox_relapse``). Thin: each checks its form with the user's Caller; a form to fix
comes back (422) with what was typed kept; a patient or referral the user may not see answers as
one that does not exist. Registered before the inbox's routes (its ``/inbox/{id}/{action}``)."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from fhir_gateway.errors import Forbidden, InvalidRequest, NotFound, PayloadTooLarge
from fhir_gateway.web._inbox_relapse import partner_report_page, submit_partner_report
from fhir_gateway.web._patient_page import patient_page
from fhir_gateway.web._patient_relapse import form_values, submit_report
from fhir_gateway.web._patient_relapse_plan import form_rows, submit_plan
from fhir_gateway.web._render import keys, render
from fhir_gateway.web._routes import CaseTeamDep, PartnerDep, WebRoute
from fhir_gateway.web._sessions import CSRF_COOKIE

__all__ = ["router", "FORM_BYTES"]

router = APIRouter(prefix="/web", route_class=WebRoute, include_in_schema=False)
FORM_BYTES = 64 * 1024


async def _fields(request: Request) -> dict[str, list[str]]:
    """The posted form with its repeated fields (the ticked signs), bounded, after the CSRF check."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise InvalidRequest("This page accepts only its own forms.")
    too_large = PayloadTooLarge(f"The form is larger than {FORM_BYTES // 1024} KB.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > FORM_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > FORM_BYTES:
            raise too_large
        chunks.append(chunk)
    body = b"".join(chunks)
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=80)
    token = (fields.get("csrf_token") or [""])[0]
    if not keys(request).csrf_ok(request.cookies.get(CSRF_COOKIE), token):
        raise Forbidden(
            "This form has expired or did not come from this site. Reload the page and try again."
        )
    return fields


async def _form(request: Request) -> dict[str, list[str]]:
    try:
        return await _fields(request)
    except ValueError as exc:  # parse_qs past max_num_fields
        raise InvalidRequest("The form has too many fields.") from exc


@router.post("/patients/{patient_id}/warning-signs")
async def report_warning_signs(request: Request, patient_id: str, caller: CaseTeamDep) -> Response:
    fields = await _form(request)
    app = request.app.state
    user = str(request.state.web_user.username)
    submitted = await run_in_threadpool(
        app.database.write, submit_report, caller, app.settings, user, patient_id, fields
    )
    if submitted.checked.ok:
        done = "warning-signs-raised" if submitted.raised else "warning-signs"
        return RedirectResponse(f"/web/patients/{patient_id}?done={done}", status_code=303)
    page = app.database.read(patient_page, caller, app.settings, patient_id)
    if page is None:
        raise NotFound(f"There is no patient {patient_id}.")
    context = {
        "page": page,
        "report_errors": submitted.checked.errors,
        "report_values": form_values(fields),
    }
    return render(request, "patient.html", context, status=422)


@router.post("/patients/{patient_id}/relapse-plan")
async def write_relapse_plan(request: Request, patient_id: str, caller: CaseTeamDep) -> Response:
    fields = await _form(request)
    app = request.app.state
    user = str(request.state.web_user.username)
    checked = await run_in_threadpool(
        app.database.write, submit_plan, caller, app.settings, user, patient_id, fields
    )
    if checked.ok:
        return RedirectResponse(
            f"/web/patients/{patient_id}?done=relapse-plan#relapse-h", status_code=303
        )
    page = app.database.read(patient_page, caller, app.settings, patient_id)
    if page is None:
        raise NotFound(f"There is no patient {patient_id}.")
    values = form_values(fields)
    context = {
        "page": page,
        "plan_errors": checked.errors,
        "plan_values": values,
        "plan_rows": form_rows(values),
    }
    return render(request, "patient.html", context, status=422)


# -- the partner inbox: a partner treating the patient reports what it notices --------------------


@router.get("/inbox/{task_id}/warning-signs")
def partner_report_form(request: Request, task_id: str, caller: PartnerDep) -> Response:
    app = request.app.state
    page = app.database.read(partner_report_page, caller, app.settings, task_id)
    return render(request, "inbox_warning_signs.html", {"page": page})


@router.post("/inbox/{task_id}/warning-signs")
async def partner_report(request: Request, task_id: str, caller: PartnerDep) -> Response:
    fields = await _form(request)
    app = request.app.state
    submitted = await run_in_threadpool(
        app.database.write, submit_partner_report, caller, task_id, fields
    )
    if submitted.checked.ok:
        done = "warning-signs-raised" if submitted.raised else "warning-signs"
        return RedirectResponse(f"/web/inbox?done={done}", status_code=303)
    page = app.database.read(partner_report_page, caller, app.settings, task_id)
    context = {
        "page": page,
        "report_errors": submitted.checked.errors,
        "report_values": form_values(fields),
    }
    return render(request, "inbox_warning_signs.html", context, status=422)
