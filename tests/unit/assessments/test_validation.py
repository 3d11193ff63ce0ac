"""What a response must fit before it is stored (pure): each refusal names its item, and a
Questionnaire that scoring could not use is refused when it is written."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_gateway.assessments import SHIPPED_INSTRUMENTS, ExpressionError, build
from fhir_gateway.assessments._validate import check_response
from fhir_gateway.errors import BusinessRule

LOINC = "http://loinc.org"
PHQ9_DOC = orjson.loads((SHIPPED_INSTRUMENTS / "Questionnaire-phq-9.json").read_bytes())
PHQ9 = build(PHQ9_DOC)
# a Questionnaire of someone else's (the relapse plan's, say): free text, a number, required items
OWN = build(
    {
        "resourceType": "Questionnaire",
        "id": "warning-signs",
        "url": "http://example.org/Questionnaire/warning-signs",
        "status": "active",
        "item": [
            {"linkId": "sleep", "type": "integer", "text": "Hours slept", "required": True},
            {"linkId": "note", "type": "string", "text": "Anything else", "repeats": True},
            {
                "linkId": "voices",
                "type": "boolean",
                "text": "Hearing voices again?",
                "required": True,
                "enableWhen": [{"question": "sleep", "operator": "<", "answerInteger": 5}],
            },
        ],
    }
)


def texts(instrument: Any, items: list[dict[str, Any]], status: str = "completed") -> list[str]:
    doc = {"resourceType": "QuestionnaireResponse", "status": status, "item": items}
    return [i.diagnostics for i in check_response(instrument, doc)]


def coded(link: str, *codes: str) -> dict[str, Any]:
    return {
        "linkId": link,
        "answer": [{"valueCoding": {"system": LOINC, "code": c}} for c in codes],
    }


def test_a_fitting_phq9_response_has_no_issues_and_a_partial_one_is_allowed() -> None:
    assert texts(PHQ9, [coded("/44250-9", "LA6570-1"), coded("/44260-8", "LA6568-5")]) == []


def test_each_misfit_is_named_by_its_item() -> None:
    (unknown,) = texts(PHQ9, [coded("/12345-6", "LA6570-1")])
    assert "'/12345-6' is not an item" in unknown
    (option,) = texts(PHQ9, [coded("/44250-9", "LA33-6")])
    assert option.startswith("item 1 (/44250-9") and "LA33-6" in option
    (kind,) = texts(PHQ9, [{"linkId": "/44255-8", "answer": [{"valueInteger": 2}]}])
    assert kind.startswith("item 2 (/44255-8") and "not one of its answerOptions" in kind
    (repeats,) = texts(PHQ9, [coded("/44260-8", "LA6568-5", "LA6571-9")])
    assert "item 9 (/44260-8" in repeats and "one answer, not 2" in repeats


def test_wrong_types_and_required_items_of_another_questionnaire() -> None:
    (kind,) = texts(OWN, [{"linkId": "sleep", "answer": [{"valueString": "six"}]}])
    assert "valueString does not fit an item of type integer" in kind
    (required,) = texts(OWN, [{"linkId": "note", "answer": [{"valueString": "ok"}]}])
    assert "sleep" in required and "required" in required
    assert texts(OWN, [], status="in-progress") == []  # only a completed response must be whole
    assert (
        texts(OWN, [{"linkId": "sleep", "answer": [{"valueInteger": 8}]}]) == []
    )  # voices not asked
    (asked,) = texts(OWN, [{"linkId": "sleep", "answer": [{"valueInteger": 3}]}])
    assert "voices" in asked
    two_notes = {"linkId": "note", "answer": [{"valueString": "a"}, {"valueString": "b"}]}
    assert texts(OWN, [{"linkId": "sleep", "answer": [{"valueInteger": 8}]}, two_notes]) == []


def test_deep_nesting_is_refused_not_followed() -> None:
    item: dict[str, Any] = {"linkId": "/44250-9"}
    for _ in range(20):
        item = {"linkId": "/44250-9", "item": [item]}
    with pytest.raises(BusinessRule, match="nested deeper"):
        texts(PHQ9, [item])


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("%resource.item.(", "does not parse"),
        ("%resource.item.answer.value.nosuchfunction()", "failed"),
    ],
)
def test_a_questionnaire_whose_expression_cannot_run_is_refused(
    expression: str, words: str
) -> None:
    doc = copy.deepcopy(PHQ9_DOC)
    doc["item"][-1]["extension"][0]["valueExpression"]["expression"] = expression
    with pytest.raises(ExpressionError, match=words):
        build(doc)


def test_one_answer_code_with_two_weights_is_refused() -> None:
    doc = copy.deepcopy(PHQ9_DOC)
    doc["item"][0]["answerOption"][1]["extension"][0]["valueDecimal"] = 7
    with pytest.raises(ExpressionError, match="two different itemWeights"):
        build(doc)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
answers = st.dictionaries(
    st.sampled_from(["valueCoding", "valueInteger", "valueString", "valueBoolean", "item"]),
    json_values,
    max_size=2,
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "linkId": st.sampled_from(["/44250-9", "/44260-8", "/44261-6", "sleep"])
                | st.text(max_size=4)
            },
            optional={"answer": st.lists(answers, max_size=3) | json_values, "item": json_values},
        ),
        max_size=10,
    ),
    st.sampled_from(["completed", "in-progress", "stopped", None]),
)
def test_validation_answers_issues_or_a_422_never_a_crash(items: list[Any], status: Any) -> None:
    doc = {"resourceType": "QuestionnaireResponse", "status": status, "item": items}
    for instrument in (PHQ9, OWN):
        try:
            issues = check_response(instrument, doc)
        except BusinessRule:
            continue
        assert all(
            i.expression and i.expression[0].startswith("QuestionnaireResponse") for i in issues
        )


def test_the_published_examples_and_a_housing_positive_ahc_hrsn_fit_the_shipped_instruments() -> (
    None
):
    data = Path(__file__).parents[2] / "data" / "fhir"
    cssrs = build(
        orjson.loads((SHIPPED_INSTRUMENTS / "Questionnaire-c-ssrs-screener.json").read_bytes())
    )
    for instrument, name in (
        (PHQ9, "QuestionnaireResponse-us-core-phq-9-example.json"),
        (cssrs, "QuestionnaireResponse-us-bh-c-ssrs-example-1.json"),
    ):
        assert check_response(instrument, orjson.loads((data / name).read_bytes())) == []
    ahc = build(
        orjson.loads((SHIPPED_INSTRUMENTS / "Questionnaire-ahc-hrsn-core.json").read_bytes())
    )
    items = [
        coded("/71802-3", "LA31995-6"),  # no steady place to live
        coded("/96778-6", "LA31996-4", "LA28580-1"),  # pests and mold: repeats
        coded("/88122-7", "LA28397-0"),
        coded("/96779-4", "LA32002-0"),  # already shut off
    ]
    assert texts(ahc, items) == []
    (wrong,) = texts(ahc, [coded("/71802-3", "LA31996-4")])
    assert "/71802-3" in wrong
