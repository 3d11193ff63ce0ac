"""where() predicates of a FHIRPath Patch are parsed once per shape: predicates that differ only
in their string literals share a parse, and select exactly what parsing each one anew selects."""

from __future__ import annotations

from typing import Any

import pytest
from fhirpathpy import compile as fhirpath_compile
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fhir_gateway.fhir.patch import apply_fhirpath_patch
from fhir_gateway.fhir.patch._paths import _compile_predicate, _parsed

ITEMS: list[Any] = [
    {"system": "urn:oid:1.2.3", "value": "MRN-1", "use": "official"},
    {"system": "urn:oid:9", "value": "it's", "period": {"start": "2024-01-02"}},
    {"condition": {"identifier": {"value": "urn:uuid:1"}}, "rank": 2},
    {"value": "5", "code": "a\\b"},
    {"system": ["urn:oid:1.2.3"], "use": True, "code": 3},
    {"_system": {"extension": []}, "value": None},
    {"true": "x", "use": "old"},
    {},
    "A",
]
EXPRESSIONS = [
    "system='urn:oid:1.2.3'",
    "system='urn:oid:9' and value='MRN-1'",
    "system = 'urn:oid:1.2.3' or value='it\\'s'",
    "condition.identifier.value='urn:uuid:1'",
    "condition.identifier.value='urn:uuid:2'",
    "value > '4'",
    "value.startsWith('MR') and use != 'old'",
    "period.start = '2024-01-02'",
    "rank = 2 and '' = ''",
    "$this = 'A'",
    "code = 'a\\\\b'",
    "system = 'http://x.org/a' // a comment with 'quotes'",
    "value.matches('^MRN-[0-9]$')",
    "iif(use.exists(), use, 'none') = 'none'",
    "use = 'official'",
    " code= 'a' ",
    "value = ''",
    "true = 'x' or use = 'official'",
]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_a_predicate_selects_what_parsing_it_anew_selects(expression):
    predicate = _compile_predicate(expression)
    fresh = fhirpath_compile(expression)
    for item in ITEMS:
        assert predicate(item) == fresh(item), (expression, item)


_NAMES = ("system", "value", "code", "status", "start", "coding", "type", "identifier")
_LEAVES = st.one_of(
    st.sampled_from(["urn:oid:1.2.3", "MRN-1", "active", "", " x", "X"]),
    st.text(max_size=3),
    st.integers(-2, 2),
    st.booleans(),
    st.none(),
    st.just({}),
)
_NODES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from([*_NAMES, "_value", "_start"]), inner, max_size=3),
    ),
    max_leaves=8,
)
_TERMS = st.builds(
    lambda path, text: f"{path} = '{text}'" if text is not None else f"{path}.empty()",
    st.lists(st.sampled_from(_NAMES), min_size=1, max_size=3).map(".".join),
    st.one_of(st.none(), st.sampled_from(["urn:oid:1.2.3", "MRN-1", "active", "", "x"])),
)


@settings(max_examples=300)
@example(terms=["value = 'x'"], join=" or ", item={"value": " x"})
@given(
    terms=st.lists(_TERMS, min_size=1, max_size=3),
    join=st.sampled_from([" and ", " or "]),
    item=st.dictionaries(st.sampled_from([*_NAMES, "_value"]), _NODES, max_size=4),
)
def test_a_predicate_tested_in_python_selects_what_fhirpath_selects(terms, join, item):
    # The where() shapes of the HL7 v2 mapping's patches (`identifier.where(system='…')`,
    # `where(period.empty())`, `where(status='…' or location.identifier.value='…')`) are tested
    # without fhirpathpy (issue 21); whatever the item holds, the answer is fhirpathpy's.
    expression = join.join(terms)
    assert _compile_predicate(expression)(item) == fhirpath_compile(expression)(item), item


def test_predicates_differing_in_a_literal_share_one_parse():
    _parsed.cache_clear()
    for n in range(5):
        _compile_predicate(f"condition.identifier.value='urn:uuid:{n}' and rank = 2")
    assert _parsed.cache_info().misses == 1


def test_patches_matching_on_different_identifiers_each_hit_their_own_item():
    encounter = {
        "resourceType": "Encounter",
        "status": "in-progress",
        "class": {"code": "IMP"},
        "diagnosis": [
            {"condition": {"identifier": {"value": f"urn:uuid:{n}"}}, "rank": n}
            for n in range(1, 4)
        ],
    }
    for n in (2, 3):
        path = f"Encounter.diagnosis.where(condition.identifier.value='urn:uuid:{n}')"
        op = {
            "name": "operation",
            "part": [
                {"name": "type", "valueCode": "delete"},
                {"name": "path", "valueString": path},
            ],
        }
        encounter = apply_fhirpath_patch(
            encounter, {"resourceType": "Parameters", "parameter": [op]}
        )
    assert [d["rank"] for d in encounter["diagnosis"]] == [1]
