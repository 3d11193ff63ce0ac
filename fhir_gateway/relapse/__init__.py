"""Relapse signatures: the patient's own early warning signs, their reports, and the work items
raised when the reports cross what the relapse-prevention plan says; and one explainable risk
summary per patient.

- **The plan** (``Questionnaire/relapse-prevention-plan``, ``mappings/relapse/``): completed with
  the patient and family as a QuestionnaireResponse; the newest completed one is the patient's
  plan. Its warning signs (the patient's words, stage early/middle/late, who notices), what to do
  and whom to call at each stage, and how many signs at once should reach the case manager.
- **A report** (``Questionnaire/warning-signs-report``): which of the plan's signs (by their item
  ids) are present now, who noticed them, anything else. Written with the writer's rights (a
  patient they may not see: 404); one that crosses the plan raises a ``warning-signs`` Flag.
- **The risk summary** (``risk_summaries``): the signals active now, each with its source and date.

    install(settings)                                    # once, by the composition root
    database.write(seed)                                 # the shipped Questionnaires
    database.read(risk_summaries, caller, settings, ["Patient/1", "Patient/2"], today)
"""

from __future__ import annotations

from fhir_gateway import hooks
from fhir_gateway.relapse._engine import (
    check_response,
    latest_plan,
    on_response,
    plan_of_report,
)
from fhir_gateway.relapse._plan import (
    MAX_SIGNS,
    PLAN_URL,
    REPORT_URL,
    REPORTER_SYSTEM,
    REPORTERS,
    SIGN_SYSTEM,
    STAGE_SYSTEM,
    STAGES,
    Crossing,
    PlanError,
    RelapsePlan,
    Sign,
    SignsReport,
    StageAction,
    crossing,
    is_plan,
    is_report,
    plan_response,
    read_plan,
    read_report,
    report_response,
)
from fhir_gateway.relapse._risk import (
    LOOKBACK_DAYS,
    PHQ9_LOINC,
    PHQ9_RISE,
    SIGNAL_KINDS,
    Signal,
    phq9_band,
    phq9_worse,
    risk_summaries,
    risk_summary,
)
from fhir_gateway.relapse._seed import questionnaires, seed
from fhir_gateway.settings import Settings

__all__ = [
    "LOOKBACK_DAYS",
    "MAX_SIGNS",
    "PHQ9_LOINC",
    "PHQ9_RISE",
    "PLAN_URL",
    "REPORTERS",
    "REPORTER_SYSTEM",
    "REPORT_URL",
    "SIGNAL_KINDS",
    "SIGN_SYSTEM",
    "STAGES",
    "STAGE_SYSTEM",
    "Crossing",
    "RelapsePlan",
    "PlanError",
    "SignsReport",
    "Sign",
    "Signal",
    "StageAction",
    "crossing",
    "install",
    "is_plan",
    "is_report",
    "latest_plan",
    "phq9_band",
    "phq9_worse",
    "plan_of_report",
    "plan_response",
    "questionnaires",
    "read_plan",
    "read_report",
    "report_response",
    "risk_summaries",
    "risk_summary",
    "seed",
]


def install(rules: hooks.Rules, settings: Settings) -> None:
    """Register the plan and report rules on QuestionnaireResponse writes."""
    del settings
    rules.before_write("QuestionnaireResponse", check_response)
    rules.after_write("QuestionnaireResponse", on_response)
