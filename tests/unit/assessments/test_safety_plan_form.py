"""The safety-plan form and its reading, without a database: what is typed on the form comes back,
step by step, as the plan's entries (a property, for any lines and contacts within the bounds);
any response shape reads without an error and within the bounds; the plan's text escapes what the
patient wrote; and the shipped Questionnaire keeps its six steps and its attribution."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_gateway import assessments
from fhir_gateway.web._safety_plan_form import form_sections, response_from_form

QUESTIONNAIRE = assessments.shipped_questionnaire()
_line = (
    st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
        min_size=1,
        max_size=80,
    )
    .map(str.strip)
    .filter(bool)
)


def test_the_shipped_questionnaire_has_six_steps_and_cites_its_basis():
    steps = [i.get("prefix") for i in QUESTIONNAIRE["item"] if i.get("prefix")]
    assert steps == [f"Step {n}" for n in range(1, 7)]
    assert "Stanley" in QUESTIONNAIRE["copyright"] and "2012" in QUESTIONNAIRE["copyright"]
    assert "project's own" in QUESTIONNAIRE["copyright"]
    assert QUESTIONNAIRE["url"] == assessments.QUESTIONNAIRE_URL


@settings(max_examples=40, deadline=None)
@given(
    signs=st.lists(_line, min_size=1, max_size=assessments.MAX_ENTRIES),
    helpers=st.lists(
        st.tuples(_line, st.from_regex(r"\+?[0-9][0-9 -]{2,20}", fullmatch=True)), max_size=5
    ),
)
def test_what_is_typed_on_the_form_is_what_the_plan_says(signs, helpers):
    posted = {"warning-signs.sign": "\n".join(signs)}
    for i, (name, phone) in enumerate(helpers):
        posted[f"help.person.name.{i}"], posted[f"help.person.phone.{i}"] = name, phone
    response, errors = response_from_form(QUESTIONNAIRE, "Patient/p1", posted, "2026-12-01")
    assert errors == {}
    assert assessments.is_safety_plan(response)
    sections = {s.link_id: s for s in assessments.sections_of(response, QUESTIONNAIRE)}
    assert [e.text for e in sections["warning-signs"].entries] == signs
    assert [(e.text, e.phone) for e in sections["help"].entries] == [
        (n, p.strip()) for n, p in helpers
    ]
    refilled = {s.link_id: s for s in form_sections(QUESTIONNAIRE, response)}
    assert refilled["warning-signs"].fields[0].value == "\n".join(signs)


def test_a_line_too_long_or_too_many_lines_is_an_error_on_its_field():
    _, errors = response_from_form(
        QUESTIONNAIRE, "Patient/p1", {"coping.strategy": "x" * 301}, "2026-12-01"
    )
    assert "300 characters" in errors["coping.strategy"]
    many = "\n".join(f"sign {i}" for i in range(assessments.MAX_ENTRIES + 1))
    _, errors = response_from_form(
        QUESTIONNAIRE, "Patient/p1", {"warning-signs.sign": many}, "2026-12-01"
    )
    assert f"At most {assessments.MAX_ENTRIES}" in errors["warning-signs.sign"]
    _, errors = response_from_form(QUESTIONNAIRE, "Patient/p1", {}, "2026-12-01")
    assert "at least one thing" in errors["plan"]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["linkId", "item", "answer", "valueString", "x"]), inner, max_size=4
        )
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(
    items=st.lists(
        st.fixed_dictionaries(
            {"linkId": st.sampled_from(["warning-signs", "help", "x"])},
            optional={"item": _json, "answer": _json},
        ),
        max_size=6,
    )
)
def test_any_response_shape_reads_within_the_bounds(items):
    response: dict[str, Any] = {"questionnaire": assessments.QUESTIONNAIRE_URL, "item": items}
    sections = assessments.sections_of(response, QUESTIONNAIRE)
    assert len(sections) == 7
    assert all(len(s.entries) <= assessments.MAX_ENTRIES for s in sections)


def test_the_plan_text_escapes_what_the_patient_wrote():
    response, _ = response_from_form(
        QUESTIONNAIRE,
        "Patient/p1",
        {"coping.strategy": "<script>alert(1)</script> & breathe"},
        "2026-12-01T10:00:00Z",
    )
    response["id"] = "r1"
    plan = assessments.build_plan(response, QUESTIONNAIRE, "Patient/p1", None)
    assert "<script>" not in plan["text"]["div"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; breathe" in plan["text"]["div"]
    assert "basedOn" not in plan  # no discharge plan to link to
    assert assessments.is_safety_plan({"questionnaire": assessments.QUESTIONNAIRE_URL + "|1.0.0"})
