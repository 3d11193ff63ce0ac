"""The compiled search-parameter getters (search/compiled.py) give exactly what fhirpathpy gives:
the same values, in the same order, with the same FHIR types, for every resource of the corpora
and every search parameter that applies to it, and for generated resources of odd shapes. So
the index a write makes is the one fhirpathpy would have made, only cheaper."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhirpathpy.models import models as fhirpath_models
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.hl7v2 import HL7Error, convert
from fhir_gateway.search.compiled import compile_getter
from fhir_gateway.search.extract import extract, typed_values
from fhir_gateway.search.registry import SearchParam, get_registry, reference_type

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data"
_FHIR_FILES = sorted((DATA / "fhir").rglob("*.json")) + sorted((DATA / "fhir").rglob("*.ndjson"))
_MAPPINGS = sorted((ROOT / "mappings").rglob("*.json"))
_EXPECTED = sorted((DATA / "hl7v2" / "microsoft-fhir-converter" / "expected").glob("*.json"))
_MESSAGES = sorted((DATA / "hl7v2").rglob("*.hl7"))


def _resources_in(doc: Any) -> Iterator[dict[str, Any]]:
    """Every resource in a document: bundle entries, contained resources, the bundle itself."""
    if isinstance(doc, dict):
        if isinstance(doc.get("resourceType"), str):
            yield doc
        for key, value in doc.items():
            if key != "resourceType":
                yield from _resources_in(value)
    elif isinstance(doc, list):
        for item in doc:
            yield from _resources_in(item)


def _read(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".hl7":
        try:
            return list(_resources_in(convert(path.read_bytes()).bundle))
        except HL7Error:
            return []  # a message the adapter refuses writes nothing
    if path.suffix == ".ndjson":
        lines = path.read_text(encoding="utf-8").splitlines()
        return [doc for line in lines if line.strip() for doc in _resources_in(json.loads(line))]
    return list(_resources_in(json.loads(path.read_text(encoding="utf-8-sig"))))


def _params(resource: dict[str, Any]) -> list[SearchParam]:
    registry = get_registry()
    return [
        p
        for p in registry.for_type(str(resource["resourceType"])).values()
        if p.supported and p.type != "composite"
    ]


def _outcome(param: SearchParam, resource: dict[str, Any], *, compiled: bool) -> object:
    """Typed values (with their Python types: True is not 1), or that the expression failed
    (extraction then skips the parameter, whichever engine failed)."""
    try:
        values = typed_values(param, resource, compiled=compiled)
    except Exception:  # noqa: BLE001 - both engines failing is the same outcome
        return "failed"
    return [(ftype, type(data).__name__, data) for ftype, data in values]


def _assert_same(resources: list[dict[str, Any]]) -> int:
    compared = 0
    for resource in resources:
        for param in _params(resource):
            compiled = _outcome(param, resource, compiled=True)
            reference = _outcome(param, resource, compiled=False)
            assert compiled == reference, (resource.get("id"), param.code, param.expression)
            compared += 1
        assert extract(resource) == extract(resource, compiled=False), resource.get("id")
    return compared


def _label(path: Path) -> str:
    return str(path.relative_to(ROOT))


# The resources the gateway writes itself, the shipped templates and partners, the FHIR examples
# and the real-world hospital messages converted: compared in the inner loop.
_CORE = _FHIR_FILES + _MAPPINGS + sorted((DATA / "hl7v2" / "realworld").glob("*.hl7"))
_BULK = _EXPECTED + [m for m in _MESSAGES if m not in _CORE]


@pytest.mark.parametrize("path", _CORE, ids=_label)
def test_every_corpus_resource_indexes_the_same_compiled(path: Path) -> None:
    resources = _read(path)
    compared = _assert_same(resources)
    assert compared or not any(_params(r) for r in resources)


@pytest.mark.slow
@pytest.mark.parametrize("path", _BULK, ids=_label)
def test_every_converter_corpus_resource_indexes_the_same_compiled(path: Path) -> None:
    """The Microsoft converter's expected output and our conversion of each of its messages."""
    _assert_same(_read(path))


def test_the_corpora_are_the_ones_the_claim_is_about() -> None:
    gateway = _read(DATA / "fhir" / "gateway-discharges" / "versions.ndjson")
    written = {r["resourceType"] for r in gateway}
    assert {"Patient", "Encounter", "CarePlan", "Task", "ServiceRequest", "Flag"} <= written
    assert len(_MAPPINGS) > 60 and len(_MESSAGES) > 70 and len(_EXPECTED) > 50


def test_nearly_every_registry_expression_compiles() -> None:
    registry = get_registry()
    params = [
        p
        for t in registry.types
        for p in registry.for_type(t).values()
        if p.supported and p.type != "composite"
    ]
    left = {p.expression for p in params if p.compiled() is None}
    assert len(params) > 800
    assert left == {
        "Bundle.entry[0].resource",
        "Patient.deceased.exists() and Patient.deceased != false",
    }


@pytest.mark.parametrize(
    "expression",
    [
        "Patient.name.first()",
        "Patient.name.given[0]",
        "Patient.name.where(use = 'official' or use = 'usual')",
        "Patient.deceased.exists()",
        "name",
        "Patient.name.select(given)",
        "Observation.value as Quantity",
    ],
)
def test_what_the_subset_does_not_hold_stays_with_fhirpathpy(expression: str) -> None:
    assert compile_getter(expression, reference_type) is None


# -- shapes one at a time -----------------------------------------------------------------------


def _values(resource: dict[str, Any], code: str) -> list[tuple[Any, Any]]:
    param = get_registry().get(resource["resourceType"], code)
    assert param is not None and param.compiled() is not None
    compiled = typed_values(param, resource)
    assert compiled == typed_values(param, resource, compiled=False)
    return compiled


def test_primitive_extensions_and_choice_types_keep_fhirpathpys_values_and_types() -> None:
    patient = {
        "resourceType": "Patient",
        "name": [{"given": ["Asha", None], "_given": [None, {"extension": [{"url": "u"}]}]}],
        "telecom": [
            {"system": "email", "value": "a@example.org"},
            {"system": "email", "_system": {"id": "x"}, "value": "b@example.org"},
        ],
        "deceasedDateTime": "2024-05-01",
    }
    assert _values(patient, "given") == [("string", "Asha"), ("string", None), ("string", None)]
    assert _values(patient, "email") == [
        ("ContactPoint", {"system": "email", "value": "a@example.org"})
    ]
    provenance = {"resourceType": "Provenance", "occurredDateTime": "2024-05-01"}
    assert _values(provenance, "when") == [("dateTime", "2024-05-01")]
    observation = {"resourceType": "Observation", "valueString": "x", "_valueString": {"id": "1"}}
    assert _values(observation, "value-string") == [(None, "x"), (None, {"id": "1"})]  # a union


def test_references_are_typed_by_what_they_point_at_and_unions_lose_their_type() -> None:
    task = {
        "resourceType": "Task",
        "for": {"reference": "https://ehr.example/fhir/Patient/7/_history/2"},
        "owner": {"reference": "Organization/o1"},
        "requester": {"reference": "Organization/o1"},
    }
    assert _values(task, "patient") == [("Reference", task["for"])]
    assert _values(task, "owner") == [("Reference", task["owner"])]
    group = {"resourceType": "Group", "characteristic": [{"valueBoolean": True}]}
    assert _values(group, "value") == [(None, True)]
    organization = {"resourceType": "Organization", "name": "Hope", "alias": ["Hope", "HH"]}
    assert _values(organization, "name") == [(None, "Hope"), (None, "HH")]


def test_contained_resources_are_typed_by_their_own_resource_type() -> None:
    bundle = {
        "resourceType": "Bundle",
        "entry": [{"resource": {"resourceType": "Composition", "id": "c"}}],
        "identifier": {"system": "s", "value": "v"},
    }
    assert _values(bundle, "identifier") == [("Identifier", bundle["identifier"])]
    careplan = {"resourceType": "CarePlan", "activity": [{"reference": {"reference": "#x"}}]}
    assert _values(careplan, "activity-reference") == [("Reference", {"reference": "#x"})]


def test_odd_shapes_fall_back_to_fhirpathpy_with_its_answer() -> None:
    task = {"resourceType": "Task", "for": {"resourceType": 5, "reference": "Patient/1"}}
    assert _values(task, "subject") == typed_values(
        get_registry().get("Task", "subject"),  # type: ignore[arg-type]
        task,
        compiled=False,
    )
    encounter = {"resourceType": "Encounter", "length": {"value": 3, "unit": "d"}}
    assert _values(encounter, "length") == [("Duration", encounter["length"])]


# -- generated resources ------------------------------------------------------------------------

_MODEL = fhirpath_models["r4"]
_TYPES = (
    "Patient",
    "Task",
    "Observation",
    "Encounter",
    "Condition",
    "CarePlan",
    "ServiceRequest",
    "Flag",
    "Provenance",
    "Bundle",
    "Group",
    "AuditEvent",
)


def _paths(resource_type: str) -> list[tuple[str, ...]]:
    """The element paths the type's expressions read (``value.ofType(Quantity)`` as
    ``valueQuantity``), to generate resources that have values where the parameters look."""
    paths = set()
    for param in get_registry().for_type(resource_type).values():
        for part in (param.expression or "").split("|"):
            part = re.sub(
                r"\.(\w+)\)*\.ofType\((\w+)\)",
                lambda m: "." + m[1] + m[2][0].upper() + m[2][1:],
                part,
            )
            words = tuple(re.findall(r"\.([a-z][A-Za-z]*)(?![A-Za-z(])", part))
            if words:
                paths.add(words)
    return sorted(paths)


_REFERENCES = st.sampled_from(
    [
        "Patient/p1",
        "Practitioner/x/_history/2",
        "https://ehr.example/fhir/Patient/7",
        "Location/l1",
        "#c1",
        "urn:uuid:1",
        "Patient",
        "a.b/1",
    ]
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False, allow_infinity=False, width=16)
    | st.sampled_from(["email", "phone", "2024-05-01", "composed-of", "successor", ""])
    | _REFERENCES
    | st.text(max_size=4)
)
_LEAVES = _SCALARS | st.fixed_dictionaries(
    {},
    optional={
        "reference": _REFERENCES | st.integers(),
        "system": st.sampled_from(["email", "phone", "http://unitsofmeasure.org", "urn:s"]),
        "value": _SCALARS,
        "code": st.sampled_from(["mg", "x"]),
        "extension": st.just([{"url": "urn:e", "valueString": "e"}]),
        "id": st.just("i"),
        "resourceType": st.sampled_from(["Patient", "Observation", 5]),
    },
)


@st.composite
def _along(draw: st.DrawFn, path: tuple[str, ...]) -> Any:
    """A value holding ``path``: objects or arrays of them, ``_element`` twins, odd neighbours."""
    if not path:
        return draw(_LEAVES)
    child = draw(_along(path[1:]))
    key = draw(st.sampled_from([path[0], path[0], path[0], "_" + path[0]]))
    node = {
        key: child,
        **draw(st.dictionaries(st.sampled_from(["id", "_" + path[0]]), _LEAVES, max_size=1)),
    }
    return draw(st.sampled_from([node, [node], [node, node], [draw(_SCALARS), node]]))


@st.composite
def _resources(draw: st.DrawFn) -> dict[str, Any]:
    resource_type = draw(st.sampled_from(_TYPES))
    resource: dict[str, Any] = {}
    for path in draw(st.lists(st.sampled_from(_paths(resource_type)), min_size=1, max_size=6)):
        value = draw(_along(path))
        for entry in value if isinstance(value, list) else [value]:
            if isinstance(entry, dict):
                resource.update(entry)
    return {**resource, "resourceType": resource_type}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_resources())
def test_generated_resources_index_the_same_compiled(resource: dict[str, Any]) -> None:
    _assert_same([resource])
