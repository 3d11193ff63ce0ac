"""Scoring against the published examples and each instrument's edge cases, on the shipped
Questionnaires (pure: no database). A missing answer is never read as the lowest one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_gateway import assessments
from fhir_gateway.assessments import SHIPPED_INSTRUMENTS, build, score

DATA = Path(__file__).parents[2] / "data" / "fhir"
LOINC = assessments.LOINC
Y, N = assessments.YES, assessments.NO
FREQ = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]  # 0..3


def shipped(name: str) -> assessments.Instrument:
    return build(orjson.loads((SHIPPED_INSTRUMENTS / f"Questionnaire-{name}.json").read_bytes()))


PHQ9, GAD7, PHQ2, CSSRS = (shipped(n) for n in ("phq-9", "gad-7", "phq-2", "c-ssrs-screener"))
PHQ9_ITEMS = [
    "/44250-9",
    "/44255-8",
    "/44259-0",
    "/44254-1",
    "/44251-7",
    "/44258-2",
    "/44252-5",
    "/44253-3",
    "/44260-8",
]
GAD7_ITEMS = ["/69725-0", "/68509-9", "/69733-4", "/69734-2", "/69735-9", "/69689-8", "/69736-7"]


def example(name: str) -> dict[str, Any]:
    return orjson.loads((DATA / name).read_bytes())


def response(*items: tuple[str, str], status: str = "completed") -> dict[str, Any]:
    return {
        "resourceType": "QuestionnaireResponse",
        "status": status,
        "item": [
            {"linkId": link, "answer": [{"valueCoding": {"system": LOINC, "code": code}}]}
            for link, code in items
        ],
    }


def code(value: Any) -> str:
    return str(value["code"])


def test_the_us_core_phq9_example_scores_its_stated_total_of_12() -> None:
    doc = example("QuestionnaireResponse-us-core-phq-9-example.json")
    stated = next(i for i in doc["item"] if i["linkId"] == "/44261-6")["answer"][0]["valueDecimal"]
    scores = score(PHQ9, doc)
    assert scores.values["/44261-6"] == stated == 12
    assert code(scores.values["/44260-8"]) == "LA6568-5"
    assert scores.complete


def test_the_us_bh_cssrs_example_all_no_is_no_risk_by_the_screener_triage() -> None:
    # The example states LA9194-7 (Low) for eight "No" answers; the screener's triage gives Low
    # only for a yes to question 1 or 2, so the gateway records None (LA137-2).
    scores = score(CSSRS, example("QuestionnaireResponse-us-bh-c-ssrs-example-1.json"))
    assert code(scores.values["/93374-7"]) == assessments.RISK_NONE
    assert scores.complete


def test_phq9_without_item_9_has_no_total_and_item_9_stays_unknown() -> None:
    doc = response(*[(link, "LA6571-9") for link in PHQ9_ITEMS[:8]])
    scores = score(PHQ9, doc)
    assert scores.values["/44261-6"] is None  # not 24: the missing item is not read as 0
    assert scores.missing["/44261-6"] == ["/44260-8"]
    assert scores.values["/44260-8"] is None
    assert scores.missing["/44260-8"] == ["/44260-8"]


def test_phq9_difficulty_item_is_not_scored_and_not_needed() -> None:
    doc = response(*[(link, "LA6569-3") for link in PHQ9_ITEMS])
    assert score(PHQ9, doc).values["/44261-6"] == 9
    doc["item"].append(
        {"linkId": "/69722-7", "answer": [{"valueCoding": {"system": LOINC, "code": "LA6574-3"}}]}
    )
    assert score(PHQ9, doc).values["/44261-6"] == 9


def test_gad7_and_phq2_totals_and_their_gaps() -> None:
    assert (
        score(GAD7, response(*[(link, "LA6571-9") for link in GAD7_ITEMS])).values["/70274-6"] == 21
    )
    partial = score(GAD7, response(*[(link, "LA6571-9") for link in GAD7_ITEMS[1:]]))
    assert partial.values["/70274-6"] is None and partial.missing["/70274-6"] == ["/69725-0"]
    assert (
        score(PHQ2, response(("/44250-9", "LA6569-3"), ("/44255-8", "LA6570-1"))).values["/55758-7"]
        == 3
    )
    assert score(PHQ2, response(("/44250-9", "LA6569-3"))).values["/55758-7"] is None


@pytest.mark.parametrize(
    ("answers", "risk"),
    [
        ([("/93246-7", N), ("/93247-5", N), ("/93267-3", N)], assessments.RISK_NONE),
        ([("/93246-7", Y), ("/93247-5", N), ("/93267-3", N)], assessments.RISK_LOW),
        # question 2 yes opens 3-5: yes to 3 only is moderate
        (
            [
                ("/93246-7", Y),
                ("/93247-5", Y),
                ("/93248-3", Y),
                ("/93249-1", N),
                ("/93250-9", N),
                ("/93267-3", N),
            ],
            assessments.RISK_MODERATE,
        ),
        (
            [
                ("/93246-7", Y),
                ("/93247-5", Y),
                ("/93248-3", N),
                ("/93249-1", Y),
                ("/93250-9", N),
                ("/93267-3", N),
            ],
            assessments.RISK_HIGH,
        ),
        (
            [
                ("/93246-7", Y),
                ("/93247-5", Y),
                ("/93248-3", Y),
                ("/93249-1", N),
                ("/93250-9", Y),
                ("/93267-3", N),
            ],
            assessments.RISK_HIGH,
        ),
        # behaviour within 3 months is high; lifetime only is not
        (
            [("/93246-7", N), ("/93247-5", N), ("/93267-3", Y), ("/93269-9", Y)],
            assessments.RISK_HIGH,
        ),
        (
            [("/93246-7", N), ("/93247-5", N), ("/93267-3", Y), ("/93269-9", N)],
            assessments.RISK_NONE,
        ),
        (
            [("/93246-7", Y), ("/93247-5", N), ("/93267-3", Y), ("/93269-9", N)],
            assessments.RISK_LOW,
        ),
    ],
)
def test_cssrs_triage(answers: list[tuple[str, str]], risk: str) -> None:
    scores = score(CSSRS, response(*answers))
    assert code(scores.values["/93374-7"]) == risk
    assert scores.complete


def test_cssrs_skip_logic_asks_3_to_5_only_after_a_yes_to_2() -> None:
    skipped = score(CSSRS, response(("/93246-7", N), ("/93247-5", N), ("/93267-3", N)))
    assert skipped.complete  # 3-5 and 6b are not asked: nothing is missing
    opened = score(CSSRS, response(("/93246-7", N), ("/93247-5", Y), ("/93267-3", N)))
    assert opened.values["/93374-7"] is None
    assert opened.missing["/93374-7"] == ["/93248-3", "/93249-1", "/93250-9"]


def test_cssrs_unanswered_question_is_never_no_but_a_high_answer_stands() -> None:
    gap = score(CSSRS, response(("/93246-7", Y), ("/93247-5", N)))
    assert gap.values["/93374-7"] is None  # not Low: question 6 may be yes
    assert gap.missing["/93374-7"] == ["/93267-3"]
    high = score(CSSRS, response(("/93246-7", Y), ("/93247-5", Y), ("/93249-1", Y)))
    assert code(high.values["/93374-7"]) == assessments.RISK_HIGH  # nothing could lower it
    assert high.missing["/93374-7"] == ["/93248-3", "/93250-9", "/93267-3"]
    behaviour = score(CSSRS, response(("/93246-7", N), ("/93247-5", N), ("/93267-3", Y)))
    assert behaviour.values["/93374-7"] is None and behaviour.missing["/93374-7"] == ["/93269-9"]


answer_codes = st.sampled_from([None, *FREQ, "LA33-6", "not-a-code"])


@settings(max_examples=40, deadline=None)
@given(st.lists(answer_codes, min_size=9, max_size=9), st.booleans())
def test_phq9_total_is_the_sum_of_weights_when_complete_and_absent_otherwise(
    picks: list[str | None], shuffle: bool
) -> None:
    items = [(link, c) for link, c in zip(PHQ9_ITEMS, picks, strict=True) if c is not None]
    if shuffle:
        items.reverse()
    scores = score(PHQ9, response(*items))
    weights = [FREQ.index(c) if c in FREQ else None for c in picks]
    if all(w is not None for w in weights):
        assert scores.values["/44261-6"] == sum(w for w in weights if w is not None)
        assert scores.complete
    elif any(c is None for c in picks):
        assert scores.values["/44261-6"] is None
        assert scores.missing["/44261-6"] == [
            link for link, c in zip(PHQ9_ITEMS, picks, strict=True) if c is None
        ]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"linkId": st.sampled_from(PHQ9_ITEMS + ["/93246-7", "x"]) | st.text(max_size=5)},
            optional={
                "answer": st.lists(
                    st.dictionaries(
                        st.sampled_from(["valueCoding", "valueInteger", "valueString", "item"]),
                        json_values,
                        max_size=2,
                    ),
                    max_size=3,
                ),
                "item": st.lists(
                    st.fixed_dictionaries({"linkId": st.text(max_size=3)}), max_size=2
                ),
            },
        ),
        max_size=12,
    )
)
def test_the_scorer_never_crashes_on_any_response_shape(items: list[dict[str, Any]]) -> None:
    for instrument in (PHQ9, CSSRS):
        scores = score(instrument, {"resourceType": "QuestionnaireResponse", "item": items})
        assert set(scores.values) <= set(instrument.extracted)
