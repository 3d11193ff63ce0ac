"""Any Questionnaire as a form, and the posted form checked into answers (pure): a C-SSRS-shaped
screener whose follow-up questions depend on an earlier answer (enableWhen on the server)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fhir_gateway.web._questionnaire_form import check_answers, form_items, response_items

LOINC = "http://loinc.org"
YES = {"system": LOINC, "code": "LA33-6", "display": "Yes"}
NO = {"system": LOINC, "code": "LA32-8", "display": "No"}


def _yes_no(code: str, text: str, **extra: object) -> dict:
    return {
        "linkId": f"/{code}",
        "text": text,
        "type": "choice",
        "required": True,
        "answerOption": [{"valueCoding": YES}, {"valueCoding": NO}],
        **extra,
    }


SCREENER = {
    "resourceType": "Questionnaire",
    "id": "screener",
    "status": "active",
    "item": [
        {"linkId": "intro", "type": "display", "text": "Ask about the past month."},
        _yes_no("93246-7", "Have you wished you were dead?"),
        _yes_no("93247-5", "Have you had thoughts of killing yourself?"),
        _yes_no(
            "93248-3",
            "Have you thought about how you might do this?",
            enableWhen=[{"question": "/93247-5", "operator": "=", "answerCoding": YES}],
        ),
        {"linkId": "notes", "type": "text", "text": "Notes"},
        {"linkId": "age", "type": "integer", "text": "Age at first episode"},
        {"linkId": "/93374-7", "type": "choice", "text": "Risk level", "readOnly": True},
    ],
}


def _fields(**answers: str) -> dict[str, list[str]]:
    return {k.replace("_", "-"): [v] for k, v in answers.items()}


def test_the_form_asks_choices_as_options_and_says_when_a_question_applies() -> None:
    items = form_items(SCREENER)
    assert [i.kind for i in items] == ["display", "choice", "choice", "choice", "text", "integer"]
    assert [o.label for o in items[1].options] == ["Yes", "No"]
    assert items[3].condition == (
        "Answer only if the answer to “Have you had thoughts of killing yourself?” is Yes."
    )
    assert all(i.link_id != "/93374-7" for i in items)  # calculated: not asked
    assert [i.name for i in items] == [f"a-{n}" for n in range(6)]


def test_a_skipped_follow_up_is_neither_required_nor_kept() -> None:
    # "No" to thoughts: the method question does not apply, and its answer is dropped
    checked = check_answers(SCREENER, _fields(a_1="1", a_2="1", a_3="0"))
    assert checked.ok, checked.errors
    assert set(checked.answers) == {"/93246-7", "/93247-5"}
    assert checked.answers["/93247-5"] == [{"valueCoding": NO}]


def test_an_enabled_follow_up_is_required() -> None:
    checked = check_answers(SCREENER, _fields(a_1="1", a_2="0"))
    assert checked.errors == {"a-3": "Answer this question."}
    checked = check_answers(SCREENER, _fields(a_1="1", a_2="0", a_3="0"))
    assert checked.ok and checked.answers["/93248-3"] == [{"valueCoding": YES}]


def test_wrong_values_are_refused_in_words_and_kept_for_the_form() -> None:
    checked = check_answers(SCREENER, _fields(a_1="7", a_2="1", a_5="twelve"))
    assert checked.errors == {
        "a-1": "Choose one of the answers.",
        "a-5": "Enter a whole number, like 3.",
    }
    assert checked.values["a-5"] == "twelve"


def test_the_response_follows_the_questionnaire_with_answered_items_only() -> None:
    checked = check_answers(SCREENER, _fields(a_1="0", a_2="1", a_4="Calm, engaged", a_5="19"))
    items = response_items(SCREENER["item"], checked.answers)
    assert [i["linkId"] for i in items] == ["/93246-7", "/93247-5", "notes", "age"]
    assert items[2]["answer"] == [{"valueString": "Calm, engaged"}]
    assert items[3]["answer"] == [{"valueInteger": 19}]


@given(st.dictionaries(st.sampled_from([f"a-{n}" for n in range(8)]), st.text(max_size=40)))
def test_any_post_gives_answers_from_the_questionnaire_or_errors_never_a_crash(fields) -> None:
    checked = check_answers(SCREENER, {k: [v] for k, v in fields.items()})
    allowed = {"/93246-7", "/93247-5", "/93248-3", "notes", "age"}
    assert set(checked.answers) <= allowed
    for link_id in ("/93246-7", "/93247-5", "/93248-3"):
        for answer in checked.answers.get(link_id, []):
            assert answer["valueCoding"] in (YES, NO)  # never a coding from the post


def test_a_condition_on_a_bare_code_reads_as_the_options_words() -> None:
    """The shipped C-SSRS names the answer by system and code only: the form still says "Yes"."""
    bare = {"system": LOINC, "code": "LA33-6"}
    screener = {
        **SCREENER,
        "item": [
            _yes_no("93247-5", "Have you had thoughts of killing yourself?"),
            _yes_no(
                "93248-3",
                "Have you thought about how you might do this?",
                enableWhen=[{"question": "/93247-5", "operator": "=", "answerCoding": bare}],
            ),
        ],
    }
    assert form_items(screener)[1].condition == (
        "Answer only if the answer to “Have you had thoughts of killing yourself?” is Yes."
    )
