"""The query limits of a search plan (DESIGN decision 15): past one, TooCostly naming it."""

from __future__ import annotations

import pytest

from fhir_gateway.errors import TooCostly
from fhir_gateway.search import plan as p

LIMITS = p.Limits(
    search_max_parameters=5, search_max_repeats=2, search_max_values=3, search_max_sort_keys=2
)


def _refused(params: list[tuple[str, str]], limit: str) -> TooCostly:
    with pytest.raises(TooCostly) as refused:
        p.parse("Patient", params, limits=LIMITS)
    assert refused.value.status == 400
    assert refused.value.issues[0].code == "too-costly"
    assert limit in refused.value.message
    return refused.value


def test_each_limit_holds_at_its_value_and_refuses_one_more():
    p.parse("Patient", [("_sort", "name,-birthdate")], limits=LIMITS)
    _refused([("_sort", "name,birthdate,_id")], "search_max_sort_keys")
    p.parse("Patient", [("name", "a"), ("name", "b")], limits=LIMITS)
    _refused([("name", "a")] * 3, "search_max_repeats")
    p.parse("Patient", [("name", "a,b,c")], limits=LIMITS)
    _refused([("name", "a,b,c,d")], "search_max_values")
    p.parse(
        "Patient",
        [("name", "a"), ("family", "b"), ("given", "c"), ("gender", "male"), ("_count", "1")],
        limits=LIMITS,
    )
    _refused(
        [
            ("name", "a"),
            ("family", "b"),
            ("given", "c"),
            ("gender", "male"),
            ("_count", "1"),
            ("_id", "x"),
        ],
        "search_max_parameters",
    )


def test_escaped_commas_are_one_value_and_composites_count_their_alternatives():
    p.parse("Patient", [("name", r"a\,b\,c\,d")], limits=LIMITS)
    _refused([("_id", "a,b,c,d")], "search_max_values")
    with pytest.raises(TooCostly):
        p.parse("Observation", [("code-value-quantity", "a$1,b$2,c$3,d$4")], limits=LIMITS)
    p.parse("Observation", [("code-value-quantity", "a$1,b$2,c$3")], limits=LIMITS)


def test_the_refusal_names_the_parameter_it_concerns():
    assert _refused([("_sort", "a,b,c")], "search_max_sort_keys").issues[0].expression == ["_sort"]
    assert _refused([("family", "x")] * 3, "search_max_repeats").issues[0].expression == ["family"]
    assert _refused([("given", "1,2,3,4")], "search_max_values").issues[0].expression == ["given"]


def test_chained_and_has_parameters_count_their_values_too():
    _refused([("general-practitioner.name", "a,b,c,d")], "search_max_values")
    _refused([("_has:Observation:patient:code", "a,b,c,d")], "search_max_values")
