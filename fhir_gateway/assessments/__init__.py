"""Standard instruments (PHQ-9, GAD-7, PHQ-2, the C-SSRS screener, AHC-HRSN) as FHIR Questionnaires,
responses scored on write into Observations, the rules that revise a plan from the scores, the
measurement-based-care schedule and the safety plan."""

# -- measurement-based care (issue 18, item 4): schedule, completion, response and remission --------
from fhir_gateway.assessments._completion import due_task_for
from fhir_gateway.assessments._mbc_codes import INSTRUMENTS as MEASURED
from fhir_gateway.assessments._mbc_codes import MBC, MeasuredInstrument
from fhir_gateway.assessments._mbc_codes import codesystem as mbc_codesystem
from fhir_gateway.assessments._measurement import install_measurement
from fhir_gateway.assessments._schedule import (
    SCHEDULE_ID,
    is_measurement,
    measurement_tasks,
    occasions,
    schedule_plan,
)
from fhir_gateway.assessments._trend import derive, recompute, totals_of

__all__ = [
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
