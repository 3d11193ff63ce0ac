"""The FHIR schema pass: fastjsonschema's compiled check for what is valid, jsonschema's issues
for what is not. Both must agree, so that the fast check neither lets through what jsonschema
refuses nor changes a single issue a client reads."""

from __future__ import annotations

import copy
from typing import Any
from unittest import mock

import pytest
from fhir_corpus import CORPUS
from fhir_corpus import parent as parent_of
from fhir_corpus import paths as all_paths
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_gateway.errors import InvalidRequest
from fhir_gateway.fhir import validation
from fhir_gateway.fhir.validation import validate_resource

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-1"}],
    "name": [{"family": "Doe", "given": ["Jane"]}],
    "gender": "female",
    "birthDate": "1980-05-06",
}


def _resources(doc: dict[str, Any]) -> list[tuple[dict[str, Any], Any]]:
    """The resource and those nested in it, as validate_resource hands them to the schema pass
    (every JSON-rule violation seen, none refused: the schema pass is what is compared)."""
    found: list[tuple[dict[str, Any], Any]] = []
    for _violation in validation._json_rule_violations(doc, found):
        pass
    return found


def _fast_accepts(doc: dict[str, Any]) -> bool:
    return validation._passes_fast_check(_resources(doc))


def _jsonschema_accepts(doc: dict[str, Any]) -> bool:
    return validation._detailed_schema_issues(_resources(doc), doc["resourceType"]) == []


def _outcome(doc: dict[str, Any]) -> tuple[str, list[tuple[str, str, list[str]]]] | None:
    """What a client reads: None when valid, else the message and every issue."""
    try:
        validate_resource(doc)
    except InvalidRequest as error:
        return error.message, [(i.code, i.diagnostics, list(i.expression)) for i in error.issues]
    return None


def _outcome_with_jsonschema_only(doc: dict[str, Any]) -> Any:
    """The outcome before the fast check existed: jsonschema alone."""
    with mock.patch.object(validation, "_passes_fast_check", return_value=False):
        return _outcome(doc)


# ---------------------------------------------------------------------------------------------
# The corpus: every resource is accepted by both
# ---------------------------------------------------------------------------------------------


def test_the_corpus_holds_the_gateways_own_work_items_and_provenance() -> None:
    kinds = {doc["resourceType"] for doc in CORPUS}
    assert {"Flag", "Task", "Provenance", "CarePlan", "Bundle"} <= kinds


@pytest.mark.parametrize("index", range(len(CORPUS)))
def test_fast_check_and_jsonschema_agree_on_the_corpus(index: int) -> None:
    doc = CORPUS[index]
    assert _fast_accepts(doc) == _jsonschema_accepts(doc)


# ---------------------------------------------------------------------------------------------
# Generated mutations of corpus resources
# ---------------------------------------------------------------------------------------------

# Values that break the schema where the models may let them through: wrong JSON types, codes
# outside value sets, pattern misses, booleans for numbers, integral floats, unknown elements.
ODD_VALUES = [
    1,
    0,
    -1,
    1.0,
    1.5,
    10**20,
    True,
    False,
    "",
    " ",
    "bogus",
    "a b",
    "two  spaces",
    "1980-13-01",
    "2024-01-01T10:00:00",
    "2024-01-01T10:00:00Z",
    "12:00:00",
    "urn:uuid:0",
    "x" * 70,
    "é",
    [],
    [1],
    ["x"],
    {},
    {"text": "x"},
    {"reference": "Patient/p1"},
    None,
]
ODD_KEYS = ["colour", "_id", "text", "extension", "valueString", "value", "resourceType", "id"]

_json_scalars = st.one_of(
    st.sampled_from(ODD_VALUES).map(copy.deepcopy),  # a drawn {} may be added to below
    st.text(max_size=6),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)


@st.composite
def mutated_resources(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in all_paths(doc) if p and p != ("resourceType",)]  # refused before
        path = paths[draw(st.integers(0, len(paths) - 1))]
        parent, key = parent_of(doc, path), path[-1]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[key] = draw(_json_scalars)
        elif action == "delete" and isinstance(parent, dict):
            del parent[key]
        elif isinstance(parent[key], dict):
            parent[key][draw(st.sampled_from(ODD_KEYS))] = draw(_json_scalars)
    return doc


def _ends_in_newline(node: Any) -> bool:
    """fastjsonschema reads a pattern's ``$`` as the very end; Python's ``re`` (jsonschema) also
    matches it before a final newline."""
    if isinstance(node, dict):
        return any(_ends_in_newline(child) for child in node.values())
    if isinstance(node, list):
        return any(_ends_in_newline(child) for child in node)
    return isinstance(node, str) and node.endswith("\n")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_resources())
def test_fast_check_and_jsonschema_agree_on_mutations(doc: dict[str, Any]) -> None:
    fast, full = _fast_accepts(doc), _jsonschema_accepts(doc)
    assert full or not fast  # never lets through what jsonschema refuses
    if not _ends_in_newline(doc):
        assert fast == full


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_resources())
def test_what_a_client_reads_is_what_jsonschema_alone_said(doc: dict[str, Any]) -> None:
    assert _outcome(doc) == _outcome_with_jsonschema_only(doc)


# ---------------------------------------------------------------------------------------------
# The issues of documents only the schema refuses, word for word
# ---------------------------------------------------------------------------------------------

GENDERS = "['male', 'female', 'other', 'unknown']"
TELECOM_SYSTEMS = "['phone', 'fax', 'email', 'pager', 'url', 'sms', 'other']"


@pytest.mark.parametrize(
    ("doc", "issues"),
    [
        ({**PATIENT, "active": 1}, [("Patient.active", "1 is not of type 'boolean'")]),
        ({**PATIENT, "active": 1.0}, [("Patient.active", "1.0 is not of type 'boolean'")]),
        (
            {**PATIENT, "multipleBirthInteger": True},
            [("Patient.multipleBirthInteger", "True is not of type 'number'")],
        ),
        (
            {**PATIENT, "gender": "bogus"},
            [("Patient.gender", f"'bogus' is not one of {GENDERS}")],
        ),
        (
            {**PATIENT, "telecom": [{"system": "pager2", "value": "1"}]},
            [("Patient.telecom[0].system", f"'pager2' is not one of {TELECOM_SYSTEMS}")],
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": PATIENT}, {"resource": {**PATIENT, "gender": "robot"}}],
            },
            [("Bundle.entry[1].resource.gender", f"'robot' is not one of {GENDERS}")],
        ),
        (
            {
                **PATIENT,
                "contained": [{"resourceType": "Organization", "id": "o", "active": "yes"}],
            },
            [
                ("Patient.contained[0].active", "'yes' does not match '^true|false$'"),
                ("Patient.contained[0].active", "'yes' is not of type 'boolean'"),
            ],
        ),
    ],
)
def test_schema_issues_name_the_element_and_the_reason(
    doc: dict[str, Any], issues: list[tuple[str, str]]
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_resource(doc)
    error = caught.value
    assert [(i.expression[0], i.diagnostics) for i in error.issues] == issues
    assert {i.code for i in error.issues} == {"value"}
    where, reason = issues[0]
    more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
    assert error.message == f"Invalid {doc['resourceType']}: {where}: {reason}{more}"


@pytest.mark.parametrize("kind", sorted({doc["resourceType"] for doc in CORPUS}))
def test_every_corpus_type_compiles(kind: str) -> None:
    """A type that could not compile would send every document of it to jsonschema (slow)."""
    assert validation._fast_check(kind) is not None


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"deceasedBoolean": True, "deceasedDateTime": "2020"}, "deceasedDateTime"),
        ({"birthDate": "2021-02-30"}, "Patient.birthDate"),
    ],
)
def test_what_only_the_models_refuse_is_refused(change: dict[str, Any], where: str) -> None:
    """The schema accepts these: the models pass cannot be left out for what the schema proves."""
    doc = {**PATIENT, **change}
    assert _fast_accepts(doc) and _jsonschema_accepts(doc)
    with pytest.raises(InvalidRequest, match=where):
        validate_resource(doc)
