"""where() predicates of a FHIRPath Patch are parsed once per shape: predicates that differ only
in their string literals share a parse, and select exactly what parsing each one anew selects."""

from __future__ import annotations

from typing import Any

import pytest
from fhirpathpy import compile as fhirpath_compile

from fhir_gateway.fhir.patch import apply_fhirpath_patch
from fhir_gateway.fhir.patch._paths import _compile_predicate, _parsed

ITEMS: list[Any] = [
    {"system": "urn:oid:1.2.3", "value": "MRN-1", "use": "official"},
    {"system": "urn:oid:9", "value": "it's", "period": {"start": "2024-01-02"}},
    {"condition": {"identifier": {"value": "urn:uuid:1"}}, "rank": 2},
    {"value": "5", "code": "a\\b"},
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
]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_a_predicate_selects_what_parsing_it_anew_selects(expression):
    predicate = _compile_predicate(expression)
    fresh = fhirpath_compile(expression)
    for item in ITEMS:
        assert predicate(item) == fresh(item), (expression, item)


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
