"""The walk of what only the FHIR models refuse (model_rules), held to the models' verdicts.

A valid resource meets the JSON schema's compiled check and this walk instead of the models, so
a refusal the walk missed would let through what the models refuse. These tests compare the two
verdicts on what the world sends (the corpora), on mutations aimed at what the schema cannot see
(a required element dropped, a second type of an [x] element, an impossible date, an integer out
of range, a primitive replaced by its extension) and on values generated from the schema's own
date and time patterns.
"""

from __future__ import annotations

import copy
import random
from typing import Any
from unittest import mock

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir_core import types as fhir_types
from fhir_corpus import CORPUS, parent, paths
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from fhir_gateway.errors import InvalidRequest
from fhir_gateway.fhir import model_rules, validation
from fhir_gateway.fhir.model_rules import may_break_model_rules
from fhir_gateway.fhir.validation import validate_resource

TASK = {
    "resourceType": "Task",
    "status": "requested",
    "intent": "order",
    "for": {"reference": "Patient/p1"},
    "authoredOn": "2026-01-05T10:00:00+05:30",
}
WHY_ABSENT = {
    "extension": [
        {
            "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
            "valueCode": "unknown",
        }
    ]
}


def _verdict(doc: dict[str, Any]) -> str | None:
    """None when accepted, else the message a client reads."""
    try:
        validate_resource(copy.deepcopy(doc))
    except InvalidRequest as error:
        return error.message
    return None


def _verdict_of_both_validators(doc: dict[str, Any]) -> str | None:
    """What validate_resource answered before the walk: every document through the models and
    the schema."""
    with mock.patch.object(validation, "may_break_model_rules", return_value=True):
        return _verdict(doc)


def _flagged(doc: dict[str, Any]) -> bool:
    return may_break_model_rules(doc, get_fhir_model_class(doc["resourceType"]))


# ---------------------------------------------------------------------------------------------
# What the schema lets through and the models refuse: flagged, and refused with their issue
# ---------------------------------------------------------------------------------------------

MODELS_ONLY = [
    pytest.param({**TASK, "status": None}, "Task.status", id="required-primitive-missing"),
    pytest.param(
        {**TASK, "status": None, "_status": {"id": "s1"}},
        "Task.status",
        id="required-primitive-extension-without-reason",
    ),
    pytest.param(
        {**TASK, "authoredOn": "2026-02-29T10:00:00Z"}, "Task.authoredOn", id="impossible-dateTime"
    ),
    pytest.param(
        {"resourceType": "Patient", "birthDate": "2021-04-31"},
        "Patient.birthDate",
        id="impossible-date",
    ),
    pytest.param(
        {"resourceType": "Patient", "deceasedBoolean": False, "deceasedDateTime": "2020"},
        "deceasedDateTime",
        id="two-types-of-one-choice",
    ),
    pytest.param(
        {"resourceType": "Patient", "multipleBirthInteger": 2**31},
        "Patient.multipleBirthInteger",
        id="integer-beyond-32-bits",
    ),
    pytest.param(
        {"resourceType": "Patient", "extension": [{"valueString": "x"}]},
        "Patient.extension[0].url",
        id="nested-required-missing",
    ),
    pytest.param(
        {"resourceType": "Patient", "extension": [{"url": "http://x", "valuePositiveInt": 0}]},
        "Patient.extension[0].valuePositiveInt",
        id="positiveInt-zero",
    ),
    pytest.param(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": {k: v for k, v in TASK.items() if k != "intent"}}],
        },
        "intent",
        id="in-a-bundle-entry",
    ),
    pytest.param(
        {**TASK, "contained": [{"resourceType": "Patient", "birthDate": "2021-02-30"}]},
        "birthDate",
        id="in-a-contained-resource",
    ),
    pytest.param(
        {"resourceType": "Patient", "extension": [{"url": "http://x", "_valueCode": {"id": "a"}}]},
        "Patient.extension[0]._valueCode",
        id="an-element-the-schema-knows-and-the-models-do-not",
    ),
    pytest.param(
        {"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
        None,
        id="valid-no-flag",
    ),
]


def _without_nones(doc: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in doc.items() if value is not None}


@pytest.mark.parametrize(("doc", "where"), MODELS_ONLY)
def test_what_only_the_models_refuse_is_flagged_and_refused(
    doc: dict[str, Any], where: str | None
) -> None:
    doc = _without_nones(doc)
    if where is None:
        assert not _flagged(doc)
        assert _verdict(doc) is None
        return
    assert validation._passes_fast_check(validation._check_json_rules(doc, doc["resourceType"]))
    assert _flagged(doc)
    verdict = _verdict(doc)
    assert verdict is not None and where in verdict
    assert verdict == _verdict_of_both_validators(doc)


def test_a_required_primitive_may_be_replaced_by_its_reason_for_absence() -> None:
    doc = {**_without_nones({**TASK, "status": None}), "_status": WHY_ABSENT}
    assert not _flagged(doc)
    assert _verdict(doc) is None


def test_a_leap_second_is_left_to_the_models() -> None:
    """Python's datetime has no second 60; the models accept one that FHIR allows."""
    doc = {**TASK, "authoredOn": "2016-12-31T23:59:60Z"}
    assert _flagged(doc)
    assert _verdict(doc) is None


# ---------------------------------------------------------------------------------------------
# The corpora: nothing valid is flagged (else every such resource pays for the models again)
# ---------------------------------------------------------------------------------------------


def test_no_valid_corpus_resource_is_flagged() -> None:
    """(A few of the converter's expected Bundles are not valid FHIR: flagged, rightly.)"""
    flagged = [doc for doc in CORPUS if _flagged(doc)]
    wrongly = [
        (doc["resourceType"], doc.get("id"))
        for doc in flagged
        if _verdict_of_both_validators(doc) is None
    ]
    assert wrongly == []
    assert len(CORPUS) - len(flagged) > 200


# ---------------------------------------------------------------------------------------------
# Mutations aimed at what the schema cannot see: the verdict is the two validators'
# ---------------------------------------------------------------------------------------------

CHOICE_TYPES = {
    "Boolean": True,
    "DateTime": "2020-01-01",
    "String": "x",
    "Integer": 1,
    "Period": {"start": "2020"},
    "Reference": {"reference": "Patient/p1"},
    "CodeableConcept": {"text": "x"},
    "Quantity": {"value": 1},
}
ODD_NUMBERS = [0, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 1.5, 2.0, 10**12]
ODD_DATES = ["2021-02-29", "2024-02-29", "2021-04-31", "2021-06-31T10:00:00Z", "23:59:60"]


def _mutate(doc: dict[str, Any], rng: random.Random) -> str:
    """One change at a random element; returns what was done (for the failure message)."""
    path = rng.choice([p for p in paths(doc) if p and p[-1] != "resourceType"])
    holder, key = parent(doc, path), path[-1]
    value = holder[key]
    action = rng.choice(["drop", "second-choice", "odd-value", "as-extension"])
    if action == "drop" or not isinstance(holder, dict):
        del holder[key]
        return f"dropped {path}"
    if action == "second-choice":
        stem = next((key[: -len(t)] for t in CHOICE_TYPES if key.endswith(t) and key != t), None)
        if stem is not None:
            other = rng.choice(list(CHOICE_TYPES))
            holder[stem + other] = copy.deepcopy(CHOICE_TYPES[other])
            return f"added {stem + other} beside {path}"
    if action == "as-extension" and not isinstance(value, dict | list):
        del holder[key]
        holder[f"_{key}"] = rng.choice([copy.deepcopy(WHY_ABSENT), {"id": "x"}])
        return f"replaced {path} by its extension"
    if isinstance(value, bool):
        holder[key] = not value
    elif isinstance(value, int | float):
        holder[key] = rng.choice(ODD_NUMBERS)
    elif isinstance(value, str) and (value[:4].isdigit() or ":" in value):
        holder[key] = rng.choice(ODD_DATES)
    else:
        del holder[key]
        return f"dropped {path}"
    return f"set {path} to {holder[key]!r}"


def test_mutations_get_the_verdict_of_both_validators() -> None:
    rng = random.Random(20261206)
    disagreements = []
    for _ in range(600):
        doc = copy.deepcopy(rng.choice(CORPUS))
        done = [_mutate(doc, rng) for _ in range(rng.randint(1, 2)) if len(doc) > 1]
        expected = _verdict_of_both_validators(doc)
        if _verdict(doc) != expected:
            disagreements.append((doc["resourceType"], doc.get("id"), done, expected))
    assert disagreements == []


# ---------------------------------------------------------------------------------------------
# Primitive values: generated from the schema's own patterns, judged by the models' types
# ---------------------------------------------------------------------------------------------

PRIMITIVES = {
    "date": (fhir_types.DateType, "Date"),
    "dateTime": (fhir_types.DateTimeType, "DateTime"),
    "instant": (fhir_types.InstantType, "Instant"),
    "time": (fhir_types.TimeType, "Time"),
}


def _models_accept(annotation: Any, value: Any) -> bool:
    try:
        TypeAdapter(annotation).validate_python(value)
    except (ValidationError, ValueError):
        return False
    return True


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_date_or_time_the_walk_passes_the_models_accept(name: str, data: st.DataObject) -> None:
    pattern = validation._schema_definitions()[name]["pattern"]
    value = data.draw(st.from_regex(pattern, fullmatch=True))
    annotation, kind = PRIMITIVES[name]
    if not model_rules._CHECKS[kind](value):
        assert _models_accept(annotation, value), value


INTEGERS = {
    "Integer": fhir_types.IntegerType,
    "UnsignedInt": fhir_types.UnsignedIntType,
    "PositiveInt": fhir_types.PositiveIntType,
    "Decimal": fhir_types.DecimalType,
}


@pytest.mark.parametrize("kind", sorted(INTEGERS))
@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.integers(),
        st.sampled_from(ODD_NUMBERS),
        st.floats(allow_nan=False, allow_infinity=False),
    )
)
def test_a_number_the_walk_passes_the_models_accept(kind: str, value: int | float) -> None:
    if not model_rules._CHECKS[kind](value):
        assert _models_accept(INTEGERS[kind], value), value
