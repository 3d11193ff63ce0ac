"""A partner reports the warning signs it notices, from a referral of its inbox.

A partner that treats the patient (``privacy.treating_partner_relapse_rule``: the referral is its
own, accepted, in progress or on hold) sees the patient's relapse-prevention plan as the row
policy lets it (the newest completed plan it may see), the signs in the patient's words as
checkboxes, and posts a ``warning-signs-report`` as itself: reporter ``partner``, author its
Organization, ``basedOn`` the referral's ServiceRequest. Stored through
``services.resources.create`` with the user's Caller, so the write rules run exactly as for one
POSTed to the API (a report past the plan's threshold raises the case manager's work item). A
referral it does not treat the patient under answers as one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock, privacy, relapse
from fhir_gateway.context import Caller
from fhir_gateway.errors import Forbidden, GatewayError, NotFound
from fhir_gateway.services import resources
from fhir_gateway.settings import Settings
from fhir_gateway.web._display import Display
from fhir_gateway.web._patient_forms import CheckedForm, Fields
from fhir_gateway.web._patient_relapse import ReportSubmitted, check_report

__all__ = ["PartnerReportPage", "partner_report_page", "submit_partner_report"]


@dataclass(slots=True)
class PartnerReportPage:
    task_id: str
    patient: str  # the patient's name as the partner may see it
    service: str
    plan_ref: str | None = None
    made: str = ""
    signs: dict[str, list[relapse.Sign]] = field(default_factory=dict)  # stage → signs
    actions: dict[str, relapse.StageAction] = field(default_factory=dict)
    unreadable: str = ""


def _read(session: Session, caller: Caller, res_type: str, ref: str) -> dict[str, Any] | None:
    parts = ref.split("/")
    if len(parts) != 2 or parts[0] != res_type:
        return None
    try:
        return resources.read(session, res_type, parts[1], caller).content
    except (NotFound, Forbidden):
        return None


def _treating_task(session: Session, caller: Caller, task_id: str) -> dict[str, Any]:
    """The referral, when the partner treats its patient under it; else "no such referral"."""
    task = _read(session, caller, "Task", f"Task/{task_id}")
    owner = ((task or {}).get("owner") or {}).get("reference")
    if (
        task is None
        or owner != caller.organization
        or task.get("status") not in privacy.TREATING_STATUSES
    ):
        raise NotFound(f"There is no referral {task_id} of a patient you treat.")
    return task


def _name(patient: dict[str, Any] | None) -> str:
    for name in (patient or {}).get("name") or []:
        if isinstance(name, dict):
            words = [*name.get("given", []), name.get("family", "")]
            text = name.get("text") or " ".join(w for w in words if isinstance(w, str) and w)
            if text:
                return str(text)
    return "the patient"


def _service(request: dict[str, Any] | None) -> str:
    code = (request or {}).get("code") or {}
    codings = [c for c in code.get("coding") or [] if isinstance(c, dict)]
    return str(code.get("text") or (codings[0].get("display") if codings else "") or "Referral")


def partner_report_page(
    session: Session, caller: Caller, settings: Settings, task_id: str
) -> PartnerReportPage:
    """The form's page: the referral, its patient and their plan."""
    task = _treating_task(session, caller, task_id)
    patient_ref = str((task.get("for") or {}).get("reference") or "")
    focus = str((task.get("focus") or {}).get("reference") or "")
    page = PartnerReportPage(
        task_id,
        _name(_read(session, caller, "Patient", patient_ref)),
        _service(_read(session, caller, "ServiceRequest", focus)),
    )
    found = relapse.latest_plan(session, caller, patient_ref)
    if found is None:
        return page
    page.plan_ref, doc = found
    page.made = Display.for_settings(settings).day(doc.get("authored"))
    try:
        plan = relapse.read_plan(doc)
    except GatewayError as exc:
        page.unreadable = exc.message
        return page
    for stage in relapse.STAGES:
        page.signs[stage] = [s for s in plan.signs if s.stage == stage]
    page.actions = dict(plan.actions)
    return page


def submit_partner_report(
    session: Session, caller: Caller, task_id: str, fields: Fields
) -> ReportSubmitted:
    """Check the form against the patient's plan and, when right, store the partner's report."""
    task = _treating_task(session, caller, task_id)
    patient_ref = str((task.get("for") or {}).get("reference") or "")
    found = relapse.latest_plan(session, caller, patient_ref)
    if found is None:
        checked = CheckedForm()
        checked.errors["form"] = "This patient has no relapse-prevention plan you can see yet."
        return ReportSubmitted(checked)
    plan_ref, doc = found
    plan = relapse.read_plan(doc)
    checked = check_report({**fields, "reporter": [privacy.PARTNER_REPORTER]}, plan)
    if not checked.ok:
        return ReportSubmitted(checked)
    response = relapse.report_response(
        patient_ref,
        plan_ref,
        authored=clock.to_instant(clock.now()),
        author={"reference": caller.organization},
        **checked.arguments,
    )
    focus = (task.get("focus") or {}).get("reference")
    if focus:
        response["basedOn"] = [{"reference": focus}]
    stored = resources.create(session, "QuestionnaireResponse", response, caller).stored
    assert stored is not None  # a create stores a version or raises
    crossed = relapse.crossing(plan, relapse.read_report(stored.content))
    return ReportSubmitted(checked, crossed is not None)
