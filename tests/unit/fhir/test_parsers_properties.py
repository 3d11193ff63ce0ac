"""Property tests of the parsers of client input in fhir_gateway.fhir: JSON bodies, JSON Patch
and FHIRPath Patch documents. Whatever arrives, only a GatewayError (a 4xx OperationOutcome)
leaves them, never another exception (a 500)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_gateway.errors import GatewayError
from fhir_gateway.fhir.patch import apply_fhirpath_patch, apply_json_patch
from fhir_gateway.fhir.validation import parse_json

_BOUNDED = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
_PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "active": True,
    "name": [{"family": "Rao", "given": ["Asha"]}],
    "telecom": [{"system": "phone", "value": "080 1234"}],
}
_POINTERS = st.sampled_from(
    [
        "/name/0/family",
        "/name/-",
        "/name/9",
        "/active",
        "/telecom/0",
        "",
        "/",
        "/~2",
        "/name/x",
        "/id",
    ]
)
_JSON_OPS = st.lists(
    st.fixed_dictionaries(
        {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "bogus"])},
        optional={"path": _POINTERS | st.text(max_size=6), "from": _POINTERS, "value": _JSON},
    ),
    max_size=4,
)
_FHIRPATH_PARTS = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(
                ["type", "path", "name", "value", "index", "source", "destination"]
            )
        },
        optional={
            "valueCode": st.sampled_from(["add", "insert", "delete", "replace", "move", "x"]),
            "valueString": st.sampled_from(
                [
                    "Patient",
                    "Patient.name",
                    "Patient.name[0]",
                    "Patient.active",
                    "Patient.(",
                    "name",
                ]
            ),
            "valueInteger": st.integers(-3, 3),
            "valueBoolean": st.booleans(),
        },
    ),
    max_size=5,
)


def _copy() -> dict:
    return json.loads(json.dumps(_PATIENT))


@_BOUNDED
@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_parse_json_raises_only_gateway_errors(body) -> None:
    try:
        parse_json(body, max_depth=8)
    except GatewayError:
        pass


@_BOUNDED
@given(_JSON_OPS | _JSON)
def test_json_patch_raises_only_gateway_errors(operations) -> None:
    try:
        apply_json_patch(_copy(), operations)
    except GatewayError:
        pass


@_BOUNDED
@given(
    st.lists(
        st.fixed_dictionaries({"name": st.just("operation"), "part": _FHIRPATH_PARTS}), max_size=3
    )
)
def test_fhirpath_patch_raises_only_gateway_errors(parameters) -> None:
    try:
        apply_fhirpath_patch(_copy(), {"resourceType": "Parameters", "parameter": parameters})
    except GatewayError:
        pass
