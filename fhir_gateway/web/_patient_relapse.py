"""The patient page's relapse-prevention plan and its warning-signs form.

The section shows the patient's plan (``relapse.latest_plan``: their newest completed plan the
viewer may see): their warning signs in their own words by stage, what to do and whom to call,
and when a report reaches the case manager; then the newest reports. The form lists the plan's
own signs as checkboxes: a case manager records what the patient, the family or a partner reports
(by phone, at a visit). It is stored as a ``warning-signs-report`` QuestionnaireResponse through
``services.resources.create`` with the user's Caller, so the write rules run exactly as for one
POSTed to the API (a report that crosses the plan raises the work item).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock, relapse
from fhir_gateway.context import Caller
from fhir_gateway.errors import GatewayError
from fhir_gateway.services import resources
from fhir_gateway.settings import Settings
from fhir_gateway.web._patient_consents import open_reader
from fhir_gateway.web._patient_forms import CheckedForm, Fields
from fhir_gateway.web._patient_provenance import record_provenance
from fhir_gateway.web._patient_reader import PatientReader
from fhir_gateway.web._patient_relapse_plan import form_rows, plan_values

__all__ = [
    "StageRow",
    "ReportRow",
    "RelapseSection",
    "relapse_section",
    "check_report",
    "submit_report",
    "REPORTS_SHOWN",
    "ReportSubmitted",
    "form_values",
]

REPORTS_SHOWN = 5
MAX_NAME = 200
MAX_OTHER = 2000
_STAGE_WORDS = {"early": "Early", "middle": "Middle", "late": "Late"}


@dataclass(frozen=True, slots=True)
class StageRow:
    stage: str
    name: str  # "Early"
    signs: list[relapse.Sign]
    do: str
    call: str
    threshold: str  # in words


@dataclass(frozen=True, slots=True)
class ReportRow:
    when: str
    when_iso: str
    reporter: str
    signs: list[str]  # the patient's words
    other: str
    crossed: bool


@dataclass(slots=True)
class RelapseSection:
    plan_id: str | None = None
    made: str = ""
    made_with: list[str] = field(default_factory=list)
    stages: list[StageRow] = field(default_factory=list)
    signs: list[relapse.Sign] = field(default_factory=list)
    reports: list[ReportRow] = field(default_factory=list)
    unreadable: str = ""  # a stored plan the engine cannot act on, said why
    plan_form: dict[str, list[str]] = field(default_factory=dict)  # the plan form, filled
    plan_rows: list[dict[str, str]] = field(default_factory=lambda: form_rows({}))


def _threshold(stage: str, n: int) -> str:
    later = {"early": " (or later ones)", "middle": " (or late ones)", "late": ""}[stage]
    return f"{n} {stage} sign{'s' if n != 1 else ''}{later} at once"


def _stages(plan: relapse.RelapsePlan) -> list[StageRow]:
    return [
        StageRow(
            stage,
            _STAGE_WORDS[stage],
            [s for s in plan.signs if s.stage == stage],
            plan.actions[stage].do,
            plan.actions[stage].call,
            _threshold(stage, plan.thresholds[stage]),
        )
        for stage in relapse.STAGES
    ]


def _reports(reader: PatientReader, plan: relapse.RelapsePlan) -> list[ReportRow]:
    found = [
        r
        for r in reader.find("QuestionnaireResponse", [("subject", reader.patient_ref)])
        if relapse.is_report(r) and r.get("status") in ("completed", "amended")
    ]
    found.sort(
        key=lambda r: (str(r.get("authored") or ""), str((r.get("meta") or {}).get("lastUpdated"))),
        reverse=True,
    )
    rows = []
    for doc in found[:REPORTS_SHOWN]:
        try:
            report = relapse.read_report(doc)
        except GatewayError:
            continue  # stored before the rules, or by another door: not shown as a report
        signs = [s for s in (plan.sign(i) for i in report.present) if s is not None]
        who = relapse.REPORTERS[report.reporter]
        rows.append(
            ReportRow(
                when=reader.clock.when(doc.get("authored")),
                when_iso=reader.clock.iso(doc.get("authored")),
                reporter=f"{who} ({report.reporter_name})" if report.reporter_name else who,
                signs=[s.text for s in signs],
                other=report.other,
                crossed=relapse.crossing(plan, report) is not None,
            )
        )
    return rows


def relapse_section(reader: PatientReader) -> RelapseSection:
    found = relapse.latest_plan(reader.session, reader.caller, reader.patient_ref)
    if found is None:
        return RelapseSection()
    ref, doc = found
    section = RelapseSection(
        plan_id=ref.split("/", 1)[1], made=reader.clock.day(doc.get("authored"))
    )
    try:
        plan = relapse.read_plan(doc)
    except GatewayError as exc:
        section.unreadable = exc.message
        return section
    section.made_with = list(plan.made_with)
    section.stages = _stages(plan)
    section.signs = list(plan.signs)
    section.reports = _reports(reader, plan)
    section.plan_form = plan_values(plan)
    section.plan_rows = form_rows(section.plan_form)
    return section


def check_report(fields: Fields, plan: relapse.RelapsePlan) -> CheckedForm:
    """The report's parts, or what to fix (pure): only the plan's own signs and reporters."""
    checked = CheckedForm()
    reporter = str((fields.get("reporter") or [""])[0])
    if reporter not in relapse.REPORTERS:
        checked.errors["reporter"] = "Say who noticed the signs."
    chosen = [s for s in fields.get("sign") or [] if s][: relapse.MAX_SIGNS + 1]
    signs = [plan.sign(s) for s in dict.fromkeys(chosen)]
    if any(s is None for s in signs):
        checked.errors["sign"] = "Choose signs from the patient's plan; reload the page."
    name = str((fields.get("reporter_name") or [""])[0]).strip()
    other = str((fields.get("other") or [""])[0]).strip()
    for key, text, limit in (("reporter_name", name, MAX_NAME), ("other", other, MAX_OTHER)):
        if "\x00" in text:
            checked.errors[key] = "This text holds a character that cannot be stored; retype it."
        elif len(text) > limit:
            checked.errors[key] = f"Keep this to {limit} characters (it has {len(text)})."
    if not chosen and not other:
        checked.errors["sign"] = "Tick the signs noticed, or describe what was noticed."
    if checked.ok:
        checked.arguments = {
            "signs": [s for s in signs if s is not None],
            "reporter": reporter,
            "reporter_name": name,
            "other": other,
        }
    return checked


@dataclass(frozen=True, slots=True)
class ReportSubmitted:
    checked: CheckedForm
    raised: bool = False


def submit_report(
    session: Session,
    caller: Caller,
    settings: Settings,
    user: str,
    patient_id: str,
    fields: Fields,
) -> ReportSubmitted:
    """Check the form against the patient's plan and, when right, store the report (one
    transaction: the report, the work item it raises, who recorded it)."""
    reader = open_reader(session, caller, settings, patient_id)  # 404 for a patient not theirs
    found = relapse.latest_plan(session, caller, reader.patient_ref)
    checked = CheckedForm()
    if found is None:
        checked.errors["form"] = "This patient has no relapse-prevention plan yet."
        return ReportSubmitted(checked)
    plan_ref, doc = found
    checked = check_report(fields, relapse.read_plan(doc))
    if not checked.ok:
        return ReportSubmitted(checked)
    response = relapse.report_response(
        reader.patient_ref,
        plan_ref,
        authored=clock.to_instant(clock.now()),
        author={"display": f"user:{user}"},
        **checked.arguments,
    )
    stored = resources.create(session, "QuestionnaireResponse", response, caller).stored
    assert stored is not None  # a create stores a version or raises
    record_provenance(
        session,
        caller,
        user,
        target=f"{stored.relative}/_history/{stored.version_id}",
        activity="warning signs reported",
        code="CREATE",
    )
    report = relapse.read_report(stored.content)
    return ReportSubmitted(checked, relapse.crossing(relapse.read_plan(doc), report) is not None)


def form_values(fields: Fields) -> dict[str, Any]:
    return {k: list(v) for k, v in fields.items() if k != "csrf_token"}
