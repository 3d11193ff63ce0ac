"""The warning-signs form, checked against the patient's plan (pure): only the plan's own signs
and the known reporters pass; something must be noticed; texts are bounded; what passes is what
the report is built from."""

from __future__ import annotations

from relapse_helpers import plan

from fhir_gateway.relapse import read_plan
from fhir_gateway.web._patient_relapse import check_report

PLAN = read_plan(plan("Patient/ravi"))


def test_the_plans_signs_and_a_reporter_pass():
    checked = check_report(
        {
            "sign": ["voices", "sleep", "voices"],
            "reporter": ["family"],
            "reporter_name": [" Lakshmi "],
        },
        PLAN,
    )
    assert checked.ok
    assert [s.id for s in checked.arguments["signs"]] == ["voices", "sleep"]  # once each
    assert checked.arguments["reporter_name"] == "Lakshmi"


def test_free_text_alone_is_a_report():
    checked = check_report({"reporter": ["partner"], "other": ["Missed two groups"]}, PLAN)
    assert checked.ok and checked.arguments["signs"] == []


def test_what_to_fix_is_named():
    cases = {
        "reporter": {"sign": ["voices"], "reporter": ["neighbour"]},
        "sign": {"sign": ["voices", "<script>"], "reporter": ["family"]},
        "other": {"reporter": ["family"], "other": ["x" * 2001]},
        "reporter_name": {"sign": ["tv"], "reporter": ["family"], "reporter_name": ["a\x00b"]},
    }
    for field, fields in cases.items():
        checked = check_report(fields, PLAN)
        assert list(checked.errors) == [field], (field, checked.errors)
    nothing = check_report({"reporter": ["family"]}, PLAN)
    assert nothing.errors == {"sign": "Tick the signs noticed, or describe what was noticed."}
