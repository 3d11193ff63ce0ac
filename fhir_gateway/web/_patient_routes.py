"""The patient page's routes (case managers): the page, acknowledging or resolving an alert with
a note, the Part 2 and family-involvement consent forms with the signed document, and that
document. Thin: each calls a use case with the user's Caller; every error is a readable page.

A consent form is ``multipart/form-data`` (it carries the signed document). Its body is read up to
``UPLOAD_BODY_LIMIT`` (the document's limit and room for the fields): a document over its own limit
but within that comes back as a field error on the form, with what was typed kept; a body past it
is refused before it is parsed, with the limit named.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.responses import RedirectResponse, Response

from fhir_gateway import clock, contacts
from fhir_gateway.errors import Forbidden, InvalidRequest, NotFound, PayloadTooLarge
from fhir_gateway.services import mhca, resources
from fhir_gateway.web._patient_alerts import ACTIONS, review_alert
from fhir_gateway.web._patient_consents import (
    FORMS,
    choices,
    document_of,
    open_reader,
    submit_consent,
)
from fhir_gateway.web._patient_forms import (
    MAX_DOCUMENT_BYTES,
    PURPOSES,
    CheckedForm,
    UploadedDocument,
    check_note,
    document_types,
)
from fhir_gateway.web._patient_page import patient_page
from fhir_gateway.web._patient_revisions import decide_held
from fhir_gateway.web._render import keys, render
from fhir_gateway.web._routes import CaseTeamDep, WebRoute, form_version, posted_form
from fhir_gateway.web._sessions import CSRF_COOKIE

__all__ = ["router", "UPLOAD_BODY_LIMIT"]

router = APIRouter(prefix="/web", route_class=WebRoute, include_in_schema=False)
UPLOAD_BODY_LIMIT = MAX_DOCUMENT_BYTES + 1024 * 1024
_FIELD_BYTES = 64 * 1024
_DONE = {
    "acknowledged": "Alert acknowledged. It stays on the banner until it is resolved.",
    "resolved": "Alert resolved.",
    "part2": "Part 2 consent recorded.",
    "family": "Family-involvement consent recorded.",
    "representative": "Nominated representative confirmed and added to the care team.",
    "caring": "Caring contacts stopped: no more messages will go to the patient.",
    "held-active": "Approved: the activity went to its partner, its deadline still counted from "
    "the screening.",
    "held-revoked": "Declined: the activity was withdrawn and its partner never sees it.",
    "warning-signs": "Warning signs recorded: below what the plan says to act on.",
    "relapse-plan": "Relapse-prevention plan saved: it is the plan reports are read against now.",
    "warning-signs-raised": "Warning signs recorded: past what the plan says to act on, so a "
    "work item is on the worklist. Follow the plan's action below.",
}
_VERB = {"acknowledge": "acknowledged", "resolve": "resolved"}


def _user(request: Request) -> str:
    return str(request.state.web_user.username)


def _page(
    request: Request,
    caller: Any,
    patient_id: str,
    *,
    done: str | None = None,
    problem: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    app = request.app.state
    page = app.database.read(patient_page, caller, app.settings, patient_id)
    if page is None:
        raise NotFound(f"There is no patient {patient_id}.")
    return render(
        request, "patient.html", {"page": page, "done": done, "problem": problem}, status=status
    )


@router.get("/patients/{patient_id}")
def patient_view(
    request: Request, patient_id: str, caller: CaseTeamDep, done: str = "", sent: str = ""
) -> Response:
    message = _DONE.get(done)
    if message and done in FORMS and sent.isdigit() and len(sent) < 5 and int(sent):
        sent = str(int(sent))
        message += (
            f" {sent} referral{'s' if sent != '1' else ''} waiting for it went to the partner."
        )
    return _page(request, caller, patient_id, done=message)


@router.post("/patients/{patient_id}/alerts/{flag_id}/{verb}")
async def alert_review(
    request: Request, patient_id: str, flag_id: str, verb: str, caller: CaseTeamDep
) -> Response:
    form = await posted_form(request)
    action = _VERB.get(verb)
    if action is None or action not in ACTIONS:
        raise NotFound(f"There is no action {verb!r} for an alert.")
    checked = check_note({k: [v] for k, v in form.items()})
    if not checked.ok:
        problem = {
            "flag_id": flag_id,
            "verb": verb,
            "errors": checked.errors,
            "note": form.get("note", ""),
        }
        return _page(request, caller, patient_id, problem=problem, status=422)
    await run_in_threadpool(
        request.app.state.database.write,
        review_alert,
        caller,
        _user(request),
        patient_id,
        flag_id,
        version=form_version(form),
        action=action,
        note=checked.arguments["note"],
    )
    return RedirectResponse(f"/web/patients/{patient_id}?done={action}", status_code=303)


@router.post("/patients/{patient_id}/representative/{person_id}")
async def confirm_representative(
    request: Request, patient_id: str, person_id: str, caller: CaseTeamDep
) -> Response:
    """The case manager confirms the person the gateway proposed (MHCA s14), as the API's
    ``$confirm-nominated-representative`` does, with the user's rights."""
    await posted_form(request)
    await run_in_threadpool(
        request.app.state.database.write, _confirm, caller, patient_id, person_id
    )
    return RedirectResponse(f"/web/patients/{patient_id}?done=representative", status_code=303)


@router.post("/patients/{patient_id}/caring-contacts/stop")
async def stop_caring_contacts(request: Request, patient_id: str, caller: CaseTeamDep) -> Response:
    """The patient asked to stop: as the API's ``$stop-caring-contacts``, with the user's rights."""
    await posted_form(request)
    await run_in_threadpool(
        request.app.state.database.write, contacts.stop_for_patient, patient_id, caller
    )
    return RedirectResponse(f"/web/patients/{patient_id}?done=caring", status_code=303)


@router.post("/patients/{patient_id}/held/{request_id}/{verb}")
async def decide_held_activity(
    request: Request, patient_id: str, request_id: str, verb: str, caller: CaseTeamDep
) -> Response:
    """Approve or decline an activity a screening added to the plan (review mode), as a PUT of
    its ServiceRequest through the API would, with the user's rights."""
    form = await posted_form(request)
    status = await run_in_threadpool(
        request.app.state.database.write,
        decide_held,
        caller,
        patient_id,
        request_id,
        verb,
        form_version(form),
    )
    return RedirectResponse(f"/web/patients/{patient_id}?done=held-{status}", status_code=303)


def _confirm(session: Any, caller: Any, patient_id: str, person_id: str) -> None:
    person = resources.read(session, "RelatedPerson", person_id, caller).content
    if (person.get("patient") or {}).get("reference") != f"Patient/{patient_id}":
        raise NotFound(f"There is no RelatedPerson {person_id} of this patient.")
    mhca.confirm_representative(session, person_id, caller, clock.now())


# -- consent forms --------------------------------------------------------------------------------------


def _consent_form(
    request: Request,
    caller: Any,
    patient_id: str,
    kind: str,
    checked: CheckedForm | None = None,
    values: dict[str, list[str]] | None = None,
    status: int = 200,
) -> Response:
    if kind not in FORMS:
        raise NotFound(f"There is no consent form {kind!r}.")
    app = request.app.state

    def read(session: Any) -> dict[str, Any]:
        reader = open_reader(session, caller, app.settings, patient_id)
        related = reader.of_patient("RelatedPerson")
        return {
            "patient": reader.names.of(reader.patient_ref),
            "choices": choices(reader, related),
            "today": reader.clock.today.isoformat(),
        }

    context = app.database.read(read)
    return render(
        request,
        "patient_consent.html",
        {
            **context,
            "patient_id": patient_id,
            "kind": kind,
            "title": f"Record a {FORMS[kind].lower()} consent"
            if kind == "family"
            else "Record a Part 2 consent",
            "purposes": PURPOSES,
            "errors": (checked.errors if checked else {}),
            "values": values or {},
            "limit_mb": MAX_DOCUMENT_BYTES // 1048576,
            "types": document_types(),
        },
        status=status,
    )


@router.get("/patients/{patient_id}/consents/{kind}")
def consent_form(request: Request, patient_id: str, kind: str, caller: CaseTeamDep) -> Response:
    return _consent_form(request, caller, patient_id, kind)


@router.post("/patients/{patient_id}/consents/{kind}")
async def consent_submit(
    request: Request, patient_id: str, kind: str, caller: CaseTeamDep
) -> Response:
    if kind not in FORMS:
        raise NotFound(f"There is no consent form {kind!r}.")
    fields, upload = await _upload_form(request)
    submitted = await run_in_threadpool(
        request.app.state.database.write,
        submit_consent,
        caller,
        request.app.state.settings,
        _user(request),
        patient_id,
        kind,
        fields,
        upload,
    )
    if not submitted.checked.ok:
        return _consent_form(
            request, caller, patient_id, kind, submitted.checked, fields, status=422
        )
    return RedirectResponse(
        f"/web/patients/{patient_id}?done={kind}&sent={submitted.sent}",
        status_code=303,
    )


@router.get("/patients/{patient_id}/consents/{consent_id}/document")
def consent_document(
    request: Request, patient_id: str, consent_id: str, caller: CaseTeamDep
) -> Response:
    attachment = request.app.state.database.read(document_of, caller, patient_id, consent_id)
    try:
        content = base64.b64decode(attachment["data"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NotFound("This consent's signed document cannot be read.") from exc
    kind = str(attachment.get("contentType") or "application/octet-stream")
    return Response(
        content,
        media_type=kind,
        headers={
            "Content-Disposition": f'attachment; filename="consent-{consent_id}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


# -- reading a form with a file ------------------------------------------------------------------------


async def _bounded_body(request: Request) -> bytes:
    too_large = PayloadTooLarge(
        f"The form with its attachment is larger than {UPLOAD_BODY_LIMIT // 1048576} MB; "
        f"the signed document may be at most {MAX_DOCUMENT_BYTES // 1048576} MB. "
        "Go back, attach a smaller scan and send the form again."
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > UPLOAD_BODY_LIMIT:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > UPLOAD_BODY_LIMIT:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _replay(body: bytes) -> AsyncGenerator[bytes, None]:
    yield body


async def _upload_form(request: Request) -> tuple[dict[str, list[str]], UploadedDocument | None]:
    """The posted fields and the attached document, after the size bound and the CSRF check."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("This page accepts only its own forms.")
    body = await _bounded_body(request)
    parser = MultiPartParser(
        request.headers, _replay(body), max_files=1, max_fields=60, max_part_size=_FIELD_BYTES
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequest(f"The form could not be read ({exc.message}).") from exc
    try:
        fields = {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in form.keys()}
        token = (fields.get("csrf_token") or [""])[0]
        if not keys(request).csrf_ok(request.cookies.get(CSRF_COOKIE), token):
            raise Forbidden(
                "This form has expired or did not come from this site. "
                "Reload the page and try again."
            )
        document = form.get("document")
        upload = None
        if isinstance(document, UploadFile) and document.filename:
            data = await document.read()  # within UPLOAD_BODY_LIMIT: the body was bounded
            upload = UploadedDocument(document.filename, document.content_type or "", data)
        return fields, upload
    finally:
        await form.close()
