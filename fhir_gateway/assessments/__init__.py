"""Standard instruments as FHIR data, and responses scored on write.

PHQ-9, GAD-7, PHQ-2, the C-SSRS screener and the AHC-HRSN core questions are SDC Questionnaires
in ``mappings/assessments/`` (LOINC items and answers, weights as ``itemWeight``, totals as
``calculatedExpression`` with SDC's ``weight()``), stored at start (``seed``) and editable through
the API. A QuestionnaireResponse written by any door is checked against its Questionnaire and
scored in the same transaction into Observations ``derivedFrom`` it (``install``)::

    install(rules, settings)                            # by app.build_rules
    database.write(seed, settings)                      # shipped instruments (cli seed_at_start)
    found = instrument(session, PHQ9_URL)               # compiled, per stored version
    scores = score(found, response)                     # pure: values and what is missing
    validate(session, response)                         # raises BusinessRule (422) naming the item

The codes, shapes and order other work builds on: ``mappings/assessments/README.md``.

The safety plan (``install_safety_plan``): a completed response of the safety-plan Questionnaire
is kept as the patient's own safety-plan CarePlan, completes an open safety-plan review, and is
shared with family only under the patient's consent.

Measurement-based care (``install_measurement``): PHQ-9 and GAD-7 due after a discharge as SDC
Tasks of the plan, completed by a response in their window; response and remission derived.

The plan rules (``install_plan_rules``, after ``install``): scored results and SDOH concerns fire
the rules of ``PlanDefinition-assessment-response`` (data), which alert the care team at once and
add activities to the active plan; AHC-HRSN answers become SDOH Observations and Conditions.
"""

from __future__ import annotations

from fhir_gateway.assessments._codes import (
    AHC_HRSN_URL,
    CSSRS_RISK,
    CSSRS_URL,
    GAD7_TOTAL,
    GAD7_URL,
    LOINC,
    NO,
    PHQ2_TOTAL,
    PHQ2_URL,
    PHQ9_ITEM9,
    PHQ9_TOTAL,
    PHQ9_URL,
    RISK_HIGH,
    RISK_LOW,
    RISK_MODERATE,
    RISK_NONE,
    YES,
)

# -- measurement-based care (issue 18, item 4): schedule, completion, response and remission --------
from fhir_gateway.assessments._completion import due_task_for
from fhir_gateway.assessments._fhirpath import ExpressionError
from fhir_gateway.assessments._instruments import Instrument, build, instrument, questionnaire
from fhir_gateway.assessments._mbc_codes import INSTRUMENTS as MEASURED
from fhir_gateway.assessments._mbc_codes import MBC, MeasuredInstrument
from fhir_gateway.assessments._mbc_codes import codesystem as mbc_codesystem
from fhir_gateway.assessments._measurement import install_measurement

# -- the rules that revise a plan from screening results, and the AHC-HRSN → SDOH map (planrules)
from fhir_gateway.assessments._planhooks import install_plan_rules, rules_of
from fhir_gateway.assessments._planrules import Firing, PlanRule, PlanRules, build_rules
from fhir_gateway.assessments._revise import PLAN_REVISION, REVISION_SYSTEM, AddedActivity
from fhir_gateway.assessments._rules import (
    install,
    observation_id,
    observations_of,
    score_response,
    validate,
)
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
from fhir_gateway.assessments._schedule import (
    SCHEDULE_ID,
    is_measurement,
    measurement_tasks,
    occasions,
    schedule_plan,
)
from fhir_gateway.assessments._scoring import Scores, score
from fhir_gateway.assessments._sdoh import derive as derive_sdoh
from fhir_gateway.assessments._sdohmap import SDOH_MAP_URL, SdohMap, read_map
from fhir_gateway.assessments._seed import SHIPPED_INSTRUMENTS, seed
from fhir_gateway.assessments._trend import derive, recompute, totals_of

__all__ = [
    "AHC_HRSN_URL",
    "CSSRS_RISK",
    "CSSRS_URL",
    "ExpressionError",
    "GAD7_TOTAL",
    "GAD7_URL",
    "Instrument",
    "LOINC",
    "NO",
    "PHQ2_TOTAL",
    "PHQ2_URL",
    "PHQ9_ITEM9",
    "PHQ9_TOTAL",
    "PHQ9_URL",
    "RISK_HIGH",
    "RISK_LOW",
    "RISK_MODERATE",
    "RISK_NONE",
    "SHIPPED_INSTRUMENTS",
    "Scores",
    "YES",
    "build",
    "install",
    "instrument",
    "observation_id",
    "observations_of",
    "questionnaire",
    "score",
    "score_response",
    "seed",
    "validate",
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
    "AddedActivity",
    "Firing",
    "PLAN_REVISION",
    "REVISION_SYSTEM",
    "PlanRule",
    "PlanRules",
    "SDOH_MAP_URL",
    "SdohMap",
    "build_rules",
    "derive_sdoh",
    "install_plan_rules",
    "read_map",
    "rules_of",
    "MBC",
    "MEASURED",
    "MeasuredInstrument",
    "SCHEDULE_ID",
    "derive",
    "due_task_for",
    "install_measurement",
    "is_measurement",
    "mbc_codesystem",
    "measurement_tasks",
    "occasions",
    "recompute",
    "schedule_plan",
    "totals_of",
]
