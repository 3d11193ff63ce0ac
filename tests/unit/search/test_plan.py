from __future__ import annotations

from datetime import datetime

import pytest

from fhir_gateway.errors import InvalidSearch
from fhir_gateway.search import plan as p


def _node(plan: p.SearchPlan, index: int = 0) -> p.Node:
    return plan.criteria[index].by_type[0][1]


def test_commas_or_and_escaped_commas_stay_in_the_value() -> None:
    assert p.split_values(r"a,b\,c,d") == ["a", r"b\,c", "d"]
    node = _node(p.parse("Patient", [("family", r"O\,Brien,Smith")]))
    assert isinstance(node, p.Test)
    assert [v.text for v in node.values] == ["O,Brien", "Smith"]  # type: ignore[union-attr]


def test_repeats_are_and() -> None:
    plan = p.parse("Task", [("status", "requested"), ("status", "accepted")])
    assert len(plan.criteria) == 2


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("code", p.TokenValue(None, "code", False)),
        ("sys|code", p.TokenValue("sys", "code", True)),
        ("|code", p.TokenValue(None, "code", True)),
        ("sys|", p.TokenValue("sys", None, True)),
    ],
)
def test_token_forms(raw: str, expected: p.TokenValue) -> None:
    node = _node(p.parse("Task", [("code", raw)]))
    assert node.values == (expected,)  # type: ignore[union-attr]


def test_reference_forms_and_local_absolute_urls() -> None:
    def parse(value: str, name: str = "owner") -> p.Value:
        node = _node(p.parse("Task", [(name, value)], base_url="http://h/fhir"))
        assert isinstance(node, p.Test)
        return node.values[0]

    assert parse("o1") == p.ReferenceValue((), "o1", None)
    assert parse("Organization/o1") == p.ReferenceValue(("Organization",), "o1", None)
    assert parse("http://h/fhir/Organization/o1") == p.ReferenceValue(("Organization",), "o1", None)
    assert parse("http://elsewhere/Organization/o1") == p.ReferenceValue(
        (), None, "http://elsewhere/Organization/o1"
    )
    assert parse("o1", "owner:Organization") == p.ReferenceValue(("Organization",), "o1", None)


def test_date_prefixes_and_precision() -> None:
    node = _node(p.parse("Task", [("authored-on", "ge2024-03")]))
    assert node.values == (p.DateValue("ge", datetime(2024, 3, 1), datetime(2024, 4, 1)),)  # type: ignore[union-attr]


def test_chain_resolves_the_explicit_target_type() -> None:
    node = _node(p.parse("Task", [("focus:ServiceRequest.category", "c")]))
    assert isinstance(node, p.Chain)
    assert [t for t, _ in node.targets] == ["ServiceRequest"]


def test_chain_without_type_uses_targets_that_have_the_parameter() -> None:
    node = _node(p.parse("CarePlan", [("subject.identifier", "urn:mrn|1")]))
    assert isinstance(node, p.Chain)
    assert {t for t, _ in node.targets} == {"Patient", "Group"}


def test_multi_level_chain_and_has() -> None:
    node = _node(p.parse("Task", [("focus:ServiceRequest.subject:Patient.name", "smith")]))
    assert isinstance(node, p.Chain) and isinstance(node.targets[0][1], p.Chain)
    has = _node(p.parse("ServiceRequest", [("_has:Task:focus:status", "requested")]))
    assert isinstance(has, p.Has) and has.source_type == "Task" and has.param.code == "focus"


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ([("authored-on", "2024-13-01")], "authored-on"),
        ([("authored-on", "xx2024")], "authored-on"),
        ([("status:exact", "x")], "status:exact"),
        ([("status:missing", "maybe")], "status:missing"),
        ([("owner", "Nope/1")], "owner"),
        ([("status.name", "x")], "status.name"),
        ([("_has:Task:status:status", "x")], "_has:Task:status:status"),
        ([("_count", "-1")], "_count"),
        ([("_sort", "focus.name")], "_sort"),
        ([("_include", "Task")], "_include"),
        ([("_include", "Task:status")], "_include"),
        ([("_summary", "maybe")], "_summary"),
        ([("_cursor", "garbage!")], "_cursor"),
    ],
)
def test_malformed_parameters_raise_naming_the_parameter(
    params: list[tuple[str, str]], named: str
) -> None:
    with pytest.raises(InvalidSearch) as caught:
        p.parse("Task", params)
    assert caught.value.issues[0].expression == [named]


def test_unknown_parameter_is_an_error_when_strict_and_a_warning_when_lenient() -> None:
    with pytest.raises(InvalidSearch) as caught:
        p.parse("Task", [("colour", "red")], strict=True)
    assert "colour" in caught.value.message
    plan = p.parse("Task", [("colour", "red"), ("status", "requested")])
    assert len(plan.criteria) == 1
    assert plan.warnings == ("Unknown search parameter colour for Task",)


def test_result_parameters() -> None:
    plan = p.parse(
        "CarePlan",
        [
            ("_sort", "-date,_id"),
            ("_count", "5000"),
            ("_include:iterate", "CarePlan:goal:Goal"),
            ("_revinclude", "Task:focus"),
            ("_total", "accurate"),
            ("_elements", "CarePlan.status,subject"),
        ],
        max_count=100,
    )
    assert plan.sort == (p.SortKey("date", True, "date"), p.SortKey("_id", False, "id"))
    assert plan.count == 100
    assert plan.includes == (
        p.Include("CarePlan", "goal", "Goal", True, False),
        p.Include("Task", "focus", None, False, True),
    )
    assert (plan.total, plan.elements) == ("accurate", ("status", "subject"))


def test_cursor_round_trip_and_binding_to_the_sort() -> None:
    sort = (p.SortKey("date", False, "date"),)
    cursor = p.Cursor(True, (datetime(2024, 1, 1), "Task", "t1"))
    assert p.decode_cursor(p.encode_cursor(cursor), sort) == cursor
    with pytest.raises(InvalidSearch):
        p.decode_cursor(p.encode_cursor(cursor), ())


def test_composite_over_the_resource_becomes_and_of_components() -> None:
    node = _node(p.parse("Observation", [("code-value-quantity", "http://loinc.org|8480-6$gt100")]))
    assert isinstance(node, p.AnyOf)
    (both,) = node.nodes
    assert isinstance(both, p.AllOf)
    assert [t.param.code for t in both.nodes] == ["code", "value-quantity"]  # type: ignore[union-attr]


def test_system_search_checks_types() -> None:
    plan = p.parse(None, [("_type", "Patient,Practitioner"), ("name", "smith")])
    assert plan.types == ("Patient", "Practitioner")
    assert [t for t, _ in plan.criteria[0].by_type] == ["Patient", "Practitioner"]
    with pytest.raises(InvalidSearch):
        p.parse(None, [("_type", "Nope")])
