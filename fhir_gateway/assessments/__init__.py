"""Standard instruments (PHQ-9, GAD-7, PHQ-2, the C-SSRS screener, AHC-HRSN) as FHIR Questionnaires,
responses scored on write into Observations, the rules that revise a plan from the scores, the
measurement-based-care schedule and the safety plan."""

from fhir_gateway.assessments._safety_plan import (
    SAFETY_PLAN_CATEGORY,
    build_plan,
    discharge_plan_of,
    plan_id,
    questionnaire_of,
    safety_plan_of,
)
from fhir_gateway.assessments._safety_plan import install as install_safety_plan
from fhir_gateway.assessments._safety_plan_form import (
    MAX_ENTRIES,
    MAX_TEXT,
    QUESTIONNAIRE_URL,
    SAFETY_PLAN_SYSTEM,
    Entry,
    Section,
    is_safety_plan,
    response_of,
    sections_of,
    shipped_questionnaire,
)
from fhir_gateway.assessments._safety_plan_review import complete_reviews, is_review
from fhir_gateway.assessments._safety_plan_share import (
    ShareDecision,
    crisis_line_of,
    family_of,
    may_share,
    plan_in_words,
    share_with_family,
)

__all__ = [  # the safety plan
    "MAX_ENTRIES",
    "MAX_TEXT",
    "QUESTIONNAIRE_URL",
    "SAFETY_PLAN_CATEGORY",
    "SAFETY_PLAN_SYSTEM",
    "Entry",
    "Section",
    "ShareDecision",
    "build_plan",
    "crisis_line_of",
    "family_of",
    "may_share",
    "plan_in_words",
    "share_with_family",
    "complete_reviews",
    "discharge_plan_of",
    "install_safety_plan",
    "is_review",
    "is_safety_plan",
    "plan_id",
    "questionnaire_of",
    "response_of",
    "safety_plan_of",
    "sections_of",
    "shipped_questionnaire",
]
