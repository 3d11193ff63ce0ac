"""Standard instruments (PHQ-9, GAD-7, PHQ-2, the C-SSRS screener, AHC-HRSN) as FHIR Questionnaires,
responses scored on write into Observations, the rules that revise a plan from the scores, the
measurement-based-care schedule and the safety plan."""

from __future__ import annotations

# -- the rules that revise a plan from screening results, and the AHC-HRSN → SDOH map (planrules)
from fhir_gateway.assessments._planhooks import install_plan_rules, rules_of
from fhir_gateway.assessments._planrules import Firing, PlanRule, PlanRules, build_rules
from fhir_gateway.assessments._revise import PLAN_REVISION, REVISION_SYSTEM, AddedActivity
from fhir_gateway.assessments._sdoh import derive as derive_sdoh
from fhir_gateway.assessments._sdohmap import SDOH_MAP_URL, SdohMap, read_map

__all__ = [
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
]
