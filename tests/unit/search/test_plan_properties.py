"""Property tests of the search parser: whatever a client sends, only InvalidSearch leaves it."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_gateway.errors import InvalidSearch
from fhir_gateway.search import values
from fhir_gateway.search.plan import parse, split_values

pytestmark = pytest.mark.filterwarnings("ignore")

_NAMES = st.sampled_from(
    [
        "name",
        "name:exact",
        "name:contains",
        "birthdate",
        "gender",
        "gender:not",
        "identifier",
        "general-practitioner",
        "general-practitioner:Practitioner.name",
        "_has:Observation:subject:code",
        "_id",
        "_lastUpdated",
        "_tag",
        "_security",
        "_sort",
        "_count",
        "_include",
        "_revinclude",
        "_include:iterate",
        "_total",
        "_summary",
        "_elements",
        "_cursor",
        "_type",
        "address-postalcode",
        "telecom",
        "_text",
        "link",
        "deceased",
        "active:missing",
    ]
)
# Values built from the characters search syntax gives meaning to, plus arbitrary text.
_VALUES = st.one_of(
    st.text(alphabet=st.sampled_from(list("ab0129-:|$,\\.+eqgtlTZ_/*?% ")), max_size=30),
    st.text(max_size=20),
    st.sampled_from(
        ["gt2024", "le2024-13-40", "ap1e400", "-name", "Patient:link", "*", "1e999999"]
    ),
)
_PARAMS = st.lists(st.tuples(st.one_of(_NAMES, st.text(max_size=12)), _VALUES), max_size=6)
_BOUNDED = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_BOUNDED
@given(st.sampled_from(["Patient", "Task", "CarePlan", None]), _PARAMS, st.booleans())
def test_parse_raises_only_invalid_search(resource_type, params, strict) -> None:
    try:
        parse(resource_type, params, strict=strict)
    except InvalidSearch:
        pass


@_BOUNDED
@given(st.text(max_size=40))
def test_value_helpers_raise_only_value_errors(text) -> None:
    split_values(text)
    for fn in (values.date_range, values.number_range):
        try:
            fn(text)
        except (ValueError, InvalidSearch):
            pass
    values.normalize(text)
    values.split_reference(text)
