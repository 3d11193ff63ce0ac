"""The codes and URLs the instruments are read by: LOINC items and answers, the SDC extensions
that make scoring data, and the gateway's own mark of a safety question."""

from __future__ import annotations

__all__ = [
    "LOINC",
    "BASE",
    "PHQ9_URL",
    "GAD7_URL",
    "PHQ2_URL",
    "CSSRS_URL",
    "AHC_HRSN_URL",
    "PHQ9_TOTAL",
    "PHQ9_ITEM9",
    "GAD7_TOTAL",
    "PHQ2_TOTAL",
    "CSSRS_RISK",
    "YES",
    "NO",
    "RISK_NONE",
    "RISK_LOW",
    "RISK_MODERATE",
    "RISK_HIGH",
    "ITEM_WEIGHT",
    "ORDINAL_VALUE",
    "CALCULATED",
    "OBSERVATION_EXTRACT",
    "SAFETY_ITEM",
    "SURVEY",
    "DATA_ABSENT",
]

LOINC = "http://loinc.org"
BASE = "http://fhir-gateway.org/fhir/Questionnaire/"
PHQ9_URL = BASE + "phq-9"
GAD7_URL = BASE + "gad-7"
PHQ2_URL = BASE + "phq-2"
CSSRS_URL = BASE + "c-ssrs-screener"
AHC_HRSN_URL = BASE + "ahc-hrsn-core"

PHQ9_TOTAL = "44261-6"
PHQ9_ITEM9 = "44260-8"
GAD7_TOTAL = "70274-6"
PHQ2_TOTAL = "55758-7"
CSSRS_RISK = "93374-7"
YES = "LA33-6"
NO = "LA32-8"
RISK_NONE = "LA137-2"
RISK_LOW = "LA9194-7"
RISK_MODERATE = "LA6751-7"
RISK_HIGH = "LA9193-9"

ITEM_WEIGHT = "http://hl7.org/fhir/StructureDefinition/itemWeight"
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
CALCULATED = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
OBSERVATION_EXTRACT = (
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-observationExtract"
)
# the gateway's own: an item about suicide (PHQ-9 item 9, the C-SSRS questions) whose gap is urgent
SAFETY_ITEM = "http://fhir-gateway.org/fhir/StructureDefinition/assessment-safety-item"

SURVEY = {
    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
    "code": "survey",
    "display": "Survey",
}
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
