"""parse_json counts the values of a document and refuses more than the limit (413)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_gateway.errors import PayloadTooLarge
from fhir_gateway.fhir.validation import parse_json

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=30,
)


def _count(value: object) -> int:
    if isinstance(value, dict):
        return 1 + sum(_count(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_count(v) for v in value)
    return 1


def test_a_patient_with_too_many_names_is_refused_naming_the_limit():
    body = orjson.dumps({"resourceType": "Patient", "name": [{"family": "F"}] * 500})
    with pytest.raises(PayloadTooLarge) as refused:
        parse_json(body, max_depth=64, max_values=1000)
    assert refused.value.status == 413
    assert refused.value.issues[0].code == "too-costly"
    assert "max_json_values" in refused.value.message
    assert parse_json(body, max_depth=64, max_values=1003)["resourceType"] == "Patient"


@given(_JSON)
def test_exactly_the_documents_over_the_limit_are_refused(value):
    body = orjson.dumps(value)
    count = _count(value)
    assert parse_json(body, max_depth=64, max_values=count) == value
    if count > 1:
        with pytest.raises(PayloadTooLarge):
            parse_json(body, max_depth=64, max_values=count - 1)
