"""Reading a relapse-prevention plan and a warning-signs report, and the threshold rule (pure):
the plan's numbers decide, signs of a later stage count towards an earlier one, the latest stage
crossed is the one acted on; anything the engine reads that is missing or malformed is a 422
naming the item, never another error (a property test feeds it arbitrary responses)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from relapse_helpers import plan, report

from fhir_gateway.errors import BusinessRule
from fhir_gateway.relapse import (
    REPORTER_SYSTEM,
    SIGN_SYSTEM,
    STAGE_SYSTEM,
    PlanError,
    crossing,
    read_plan,
    read_report,
    report_response,
)

P = "Patient/ravi"


def _crossed(*signs: str, thresholds: tuple[int, int, int] = (3, 2, 1)) -> str | None:
    found = crossing(read_plan(plan(P, thresholds=thresholds)), read_report(report(P, *signs)))
    return found.stage if found else None


def test_the_plan_reads_the_patients_signs_actions_and_thresholds():
    read = read_plan(plan(P))
    assert [(s.id, s.stage) for s in read.signs] == [
        ("sleep", "early"),
        ("calls", "early"),
        ("tea", "early"),
        ("tv", "middle"),
        ("voices", "late"),
    ]
    assert read.sign("tv").text == "Think the TV news is talking about me"  # type: ignore[union-attr]
    assert read.thresholds == {"early": 3, "middle": 2, "late": 1}
    assert read.actions["late"].call == "Sangamon crisis line 217-555-0199"
    assert read.made_with == ("Lakshmi Kumar (mother)",)


@pytest.mark.parametrize(
    ("signs", "stage"),
    [
        ((), None),
        (("sleep", "calls"), None),  # 2 early < 3
        (("sleep", "calls", "tea"), "early"),
        (("sleep", "calls", "tv"), "early"),  # a middle sign counts towards the early threshold
        (("tv",), None),  # 1 middle < 2
        (("voices",), "late"),  # any late sign
        (("tv", "voices"), "late"),  # middle reached too (2 at middle or later): late is acted on
        (("sleep", "tv", "voices"), "late"),
    ],
)
def test_the_latest_stage_whose_threshold_is_reached_is_acted_on(signs, stage):
    assert _crossed(*signs) == stage


def test_the_numbers_are_the_plans():
    assert _crossed("sleep", thresholds=(1, 2, 1)) == "early"
    assert _crossed("voices", thresholds=(3, 2, 2)) is None
    assert _crossed("tv", "voices", thresholds=(3, 2, 2)) == "middle"


def test_a_report_built_by_the_web_form_reads_back():
    read = read_plan(plan(P))
    doc = report_response(
        P,
        "QuestionnaireResponse/plan-1",
        [read.signs[4]],
        reporter="partner",
        reporter_name="Asha (peer worker)",
        other="Did not come to group",
        authored="2025-04-02T18:30:00Z",
    )
    back = read_report(doc)
    assert back.plan == "QuestionnaireResponse/plan-1" and back.present == ("voices",)
    assert back.reporter == "partner" and back.other == "Did not come to group"


def test_bounds_are_named():
    many = plan(P)
    sign = many["item"][0]
    many["item"] = [{**sign, "id": f"s{i}"} for i in range(31)] + many["item"][5:]
    with pytest.raises(PlanError, match="31 warning signs; at most 30"):
        read_plan(many)
    long = report(P, "voices")
    long["item"].append({"linkId": "other", "answer": [{"valueString": "x" * 2001}]})
    with pytest.raises(PlanError, match="at most 2000"):
        read_report(long)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
_weird = st.sampled_from([[1], "x", 3, True, {"a": 1}, [{"b": []}], None])
_json = _weird | _json
_coding = st.fixed_dictionaries(
    {},
    optional={
        "system": st.sampled_from([STAGE_SYSTEM, SIGN_SYSTEM, REPORTER_SYSTEM]) | _json,
        "code": st.sampled_from(["early", "late", "voices", "family"]) | _json,
    },
)
_answer = st.fixed_dictionaries(
    {},
    optional={
        "valueString": st.text(max_size=20) | _json,
        "valueCoding": _coding | _json,
        "valueBoolean": _json,
        "valueInteger": st.integers(-2, 40) | _json,
        "valueReference": st.fixed_dictionaries({"reference": st.text(max_size=30) | _json})
        | _json,
    },
)
_link = st.sampled_from(
    [
        "warning-sign",
        "warning-sign.text",
        "warning-sign.stage",
        "action-early",
        "action-early.do",
        "threshold",
        "threshold.early",
        "reporter",
        "signs-present",
        "plan",
        "other",
        "made-with",
    ]
)
_leaf = st.fixed_dictionaries(
    {"linkId": _link}, optional={"answer": st.lists(_answer, max_size=3) | _json}
)
_item = st.fixed_dictionaries(
    {"linkId": _link},
    optional={
        "id": st.sampled_from(["sleep", "voices", ""]) | _json,
        "answer": st.lists(_answer, max_size=3),
        "item": st.lists(_leaf, max_size=4) | _json,
    },
)


@settings(max_examples=200, deadline=None)
@given(items=st.lists(_item, max_size=2) | st.lists(_item, max_size=6) | _json)
def test_any_response_is_read_or_refused_with_a_clear_error(items: Any):
    doc = {"resourceType": "QuestionnaireResponse", "item": items}
    for read in (read_plan, read_report):
        try:
            read(doc)
        except BusinessRule as exc:
            assert exc.message
