"""The relapse-signature rules on QuestionnaireResponse writes (``fhir_gateway.hooks``).

Check (before the write, with the writer's rights): a completed plan must be one the engine can
act on (``_plan.read_plan``); a report must be about a patient the writer may see (else 404, as
for a patient that does not exist), name a plan of that patient the writer may see (else the
patient's newest completed plan is meant; none is a 422 saying to make one first), and only signs
of that plan.

Consequence (after it is stored, in the same transaction): a completed report that crosses the
plan (``_plan.crossing``) raises a ``warning-signs`` work item (a Flag on the Patient, one per
report, its detail the report and the plan), naming the signs in the patient's words and the
plan's action for the stage reached; a report amended below the threshold, entered in error or
deleted ends it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock, monitors, privacy
from fhir_gateway.context import Caller
from fhir_gateway.errors import Forbidden, NotFound
from fhir_gateway.fhir.references import Reference
from fhir_gateway.hooks import WriteEvent, settings_of
from fhir_gateway.relapse._plan import (
    REPORTERS,
    Crossing,
    PlanError,
    RelapsePlan,
    SignsReport,
    crossing,
    is_plan,
    is_report,
    read_plan,
    read_report,
    unknown_signs,
)
from fhir_gateway.services import resources
from fhir_gateway.settings import Settings
from fhir_gateway.store.repository import StoredResource
from fhir_gateway.store.search import match_fields

__all__ = ["check_response", "on_response", "latest_plan", "plan_of_report"]

LIVE = frozenset({"completed", "amended"})


def _settings(session: Session) -> Settings:
    return settings_of(session)  # the app's, which its rules carry


def _subject(response: dict[str, Any]) -> str:
    subject = (response.get("subject") or {}).get("reference")
    parsed = Reference.parse(subject) if isinstance(subject, str) else None
    if parsed is None or parsed.type != "Patient":
        raise PlanError("A relapse plan or report is about a patient: subject is a Patient")
    return f"Patient/{parsed.id}"


def _visible_patient(session: Session, caller: Caller, patient: str) -> None:
    """404 for a patient the caller may not see, exactly as for one that does not exist."""
    try:
        resources.read(session, "Patient", patient.split("/", 1)[1], caller)
    except (NotFound, Forbidden) as exc:
        raise NotFound(f"{patient} is not known") from exc


def latest_plan(
    session: Session, caller: Caller, patient: str
) -> tuple[str, dict[str, Any]] | None:
    """The patient's plan: their newest completed relapse-prevention plan the caller may see."""
    found = match_fields(
        session,
        "QuestionnaireResponse",
        [("subject", patient), ("status", "completed,amended")],
        {"questionnaire": ("questionnaire",), "authored": ("authored",)},
        caller=caller,
    )
    plans = [f for f in found if is_plan({"questionnaire": f["questionnaire"]})]
    if not plans:
        return None
    newest = max(plans, key=lambda f: (f["authored"] or "", f["id"]))
    stored = resources.read(session, "QuestionnaireResponse", newest["id"], caller)
    return stored.relative, stored.content


def plan_of_report(
    session: Session, caller: Caller, patient: str, report: SignsReport
) -> tuple[str, dict[str, Any], RelapsePlan]:
    """The plan a report is read against, as the caller may see it (422 when there is none)."""
    if report.plan is None:
        found = latest_plan(session, caller, patient)
        if found is None:
            raise PlanError(
                "This patient has no completed relapse-prevention plan: make one with the patient "
                "and family first; a report names the plan's own warning signs"
            )
        ref, doc = found
    else:
        ref = report.plan
        try:
            doc = resources.read(
                session, "QuestionnaireResponse", ref.split("/", 1)[1], caller
            ).content
        except (NotFound, Forbidden) as exc:
            raise PlanError(f"The plan {ref} is not known", "plan") from exc
        if not is_plan(doc) or doc.get("status") not in LIVE or _subject(doc) != patient:
            raise PlanError(
                f"{ref} is not a completed relapse-prevention plan of {patient}", "plan"
            )
    return ref, doc, read_plan(doc)


def check_response(event: WriteEvent) -> None:
    """before_write("QuestionnaireResponse")."""
    doc = event.after
    if doc is None or not (is_plan(doc) or is_report(doc)):
        return None
    patient = _subject(doc)
    _visible_patient(event.session, event.caller, patient)
    if doc.get("status") not in LIVE:
        return None  # in progress, stopped or entered in error: nothing acted on yet
    if is_plan(doc):
        read_plan(doc)
        return None
    report = read_report(doc)
    _, _, plan = plan_of_report(event.session, event.caller, patient, report)
    unknown = unknown_signs(plan, report)
    if unknown:
        raise PlanError(
            f"The plan has no warning sign with the item id {', '.join(unknown)}", "signs-present"
        )
    return None


def on_response(event: WriteEvent, stored: StoredResource | None) -> None:
    """after_write("QuestionnaireResponse")."""
    before = event.before.content if event.before is not None else None
    doc = stored.content if stored is not None and not stored.deleted else None
    if not any(d is not None and is_report(d) for d in (before, doc)):
        return
    res_id = stored.res_id if stored is not None else ""
    flag_id = monitors.monitor_id(monitors.codes.WARNING_SIGNS, f"QuestionnaireResponse/{res_id}")
    if doc is None or doc.get("status") not in LIVE or not is_report(doc):
        monitors.end_work_item(event.session, flag_id)
        return
    patient = _subject(doc)
    report = read_report(doc)
    plan_ref, plan_doc, plan = plan_of_report(event.session, event.caller, patient, report)
    crossed = crossing(plan, report)
    if crossed is None:
        monitors.end_work_item(event.session, flag_id)
        return
    alert = monitors.Alert(
        codes=[monitors.codes.WARNING_SIGNS],
        patient=patient,
        text=flag_text(report, crossed, doc.get("authored")),
        priority="PH" if crossed.stage == "late" else "PM",
        category="behavioral",
        details=[f"QuestionnaireResponse/{res_id}", plan_ref],
        labels=privacy.merge_labels(privacy.labels_of(doc), privacy.labels_of(plan_doc)),
    )
    monitors.raise_work_item(
        event.session, flag_id, alert, _settings(event.session).referral_requester
    )


def flag_text(report: SignsReport, crossed: Crossing, authored: Any) -> str:
    """The work item in words: who saw what (the patient's words, by stage) and what the plan says."""
    who = REPORTERS[report.reporter]
    if report.reporter_name:
        who = f"{who} ({report.reporter_name})"
    when = str(authored or clock.to_instant(clock.now()))[:10]
    by_stage: dict[str, list[str]] = {}
    for sign in crossed.signs:
        by_stage.setdefault(sign.stage, []).append(f"“{sign.text}”")
    seen = "; ".join(f"{stage} {', '.join(words)}" for stage, words in by_stage.items())
    action = crossed.action
    text = (
        f"Early warning signs reported by {who} on {when}: {seen}. Past what the "
        f"relapse-prevention plan says to act on at the {crossed.stage} stage; the plan says: "
        f"{action.do.rstrip('.')}."
    )
    if action.call:
        text += f" Call: {action.call.rstrip('.')}."
    if report.other:
        text += f" Also noticed: {report.other[:300]}"
    return text
