"""Routes of the patient page's questionnaires (case managers): the form of any stored
Questionnaire, posting it (a QuestionnaireResponse with the user's Caller), and its result. Thin:
the use cases are in ``_questionnaire_entry``; a wrong answer or a response the instruments'
validation refuses comes back on the form, in words, with what was chosen kept."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from fhir_gateway.errors import BusinessRule, InvalidRequest
from fhir_gateway.web._questionnaire_entry import form_context, result_context, submit_response
from fhir_gateway.web._questionnaire_form import CheckedAnswers
from fhir_gateway.web._render import render
from fhir_gateway.web._routes import CaseTeamDep, WebRoute, posted_form

__all__ = ["router"]

router = APIRouter(prefix="/web", route_class=WebRoute, include_in_schema=False)


def _form(
    request: Request,
    caller: Any,
    patient_id: str,
    questionnaire_id: str,
    checked: CheckedAnswers | None = None,
    problem: str = "",
    status: int = 200,
) -> Response:
    app = request.app.state
    context = app.database.read(
        form_context, caller, app.settings, patient_id, questionnaire_id, checked
    )
    context["problem"] = problem
    context["task"] = request.query_params.get("task", "")[:64]
    return render(request, "questionnaire.html", context, status=status)


@router.get("/patients/{patient_id}/questionnaires/{questionnaire_id}")
def questionnaire_form(
    request: Request, patient_id: str, questionnaire_id: str, caller: CaseTeamDep
) -> Response:
    return _form(request, caller, patient_id, questionnaire_id)


@router.post("/patients/{patient_id}/questionnaires/{questionnaire_id}")
async def questionnaire_submit(
    request: Request, patient_id: str, questionnaire_id: str, caller: CaseTeamDep
) -> Response:
    form = await posted_form(request)
    fields = {k: [v] for k, v in form.items()}
    app = request.app.state
    try:
        submitted = await run_in_threadpool(
            app.database.write,
            submit_response,
            caller,
            app.settings,
            str(request.state.web_user.username),
            patient_id,
            questionnaire_id,
            fields,
        )
    except (BusinessRule, InvalidRequest) as exc:  # the instruments' validation, in its words
        checked = CheckedAnswers(values={k: v[0] for k, v in fields.items()})
        problem = f"The answers were not saved: {exc.message}"
        return _form(request, caller, patient_id, questionnaire_id, checked, problem, 422)
    if not submitted.checked.ok or submitted.response_id is None:
        problem = "The answers were not saved: some questions need an answer (marked below)."
        return _form(request, caller, patient_id, questionnaire_id, submitted.checked, problem, 422)
    return RedirectResponse(
        f"/web/patients/{patient_id}/responses/{submitted.response_id}", status_code=303
    )


@router.get("/patients/{patient_id}/responses/{response_id}")
def questionnaire_result(
    request: Request, patient_id: str, response_id: str, caller: CaseTeamDep
) -> Response:
    app = request.app.state
    result = app.database.read(result_context, caller, app.settings, patient_id, response_id)
    return render(
        request,
        "questionnaire_result.html",
        {"result": result, "patient_id": patient_id},
    )
