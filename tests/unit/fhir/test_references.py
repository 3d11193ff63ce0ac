"""References as values, and finding every reference in a resource."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from fhir_gateway.fhir.references import Reference, iter_references

UUID = "urn:uuid:9d3b5b2e-6a8f-4b0e-9a51-1c2b3d4e5f60"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Patient/123", Reference("Patient", "123")),
        ("Patient/123/_history/2", Reference("Patient", "123", "2")),
        (
            "http://ehr.example/fhir/Patient/123",
            Reference("Patient", "123", base="http://ehr.example/fhir/"),
        ),
        (
            "https://ehr.example:8443/r4/fhir/Observation/a.b-c/_history/7",
            Reference("Observation", "a.b-c", "7", "https://ehr.example:8443/r4/fhir/"),
        ),
        ("http://ehr.example/Task/t1", Reference("Task", "t1", base="http://ehr.example/")),
        (UUID, Reference(None, UUID)),
        ("urn:oid:1.2.840.113619.2", Reference(None, "urn:oid:1.2.840.113619.2")),
    ],
)
def test_parse_literal_references(text: str, expected: Reference) -> None:
    parsed = Reference.parse(text)
    assert parsed == expected
    assert str(parsed) == text  # the text is rebuilt exactly


@pytest.mark.parametrize(
    "text",
    [
        "#contained-1",
        "#",
        "Patient?identifier=urn:oid:1.2|123",  # a conditional reference: resolved by search
        "Patient",
        "Patient/",
        "patient/123",
        "Patient/12 3",
        "Patient/" + "a" * 65,
        "Patient/123/_history/",
        "Patient/123/extra",
        "ftp://ehr.example/Patient/123",
        "some/path/Patient/123",
        "urn:uuid:",
        "",
        None,
        123,
    ],
)
def test_parse_what_is_not_a_literal_reference(text: Any) -> None:
    assert Reference.parse(text) is None


def test_relative_drops_base_and_version() -> None:
    reference = Reference.parse("http://ehr.example/fhir/Patient/123/_history/2")
    assert reference is not None
    assert reference.relative == "Patient/123"
    assert (reference.type, reference.id, reference.version) == ("Patient", "123", "2")
    assert reference.base == "http://ehr.example/fhir/"
    assert not reference.is_urn


def test_a_urn_stays_as_it_is() -> None:
    reference = Reference.parse(UUID)
    assert reference is not None and reference.is_urn
    assert reference.relative == UUID and str(reference) == UUID
    assert reference.type is None and reference.version is None and reference.base is None


def test_parse_relative_takes_only_a_plain_type_and_id() -> None:
    assert Reference.parse_relative("Patient/123") == Reference("Patient", "123")
    assert Reference.parse_relative("Patient/123", "Patient") == Reference("Patient", "123")
    assert Reference.parse_relative("Patient/123", "Group") is None


@pytest.mark.parametrize(
    "text",
    [
        "Patient/123/_history/2",  # a version: not the current resource
        "http://ehr.example/fhir/Patient/123",  # another server's
        UUID,
        "#contained-1",
        "Patient?identifier=urn:oid:1.2|123",
        "Patient/",
        "Patient/a/b",
        "Patient/a_b",
        "123",
        "",
        None,
        {"reference": "Patient/1"},
    ],
)
def test_parse_relative_refuses_anything_else_without_raising(text: Any) -> None:
    assert Reference.parse_relative(text) is None
    assert Reference.id_of(text, "Patient") is None


def test_id_of_gives_the_id_of_the_named_type_only() -> None:
    assert Reference.id_of("Organization/partner-1", "Organization") == "partner-1"
    assert Reference.id_of("Task/t.1", "Task") == "t.1"
    assert Reference.id_of("Organization/partner-1", "Patient") is None
    assert Reference.id_of("ServiceRequest/1", "Service") is None  # a whole type name, not a prefix
    assert Reference.id_of("Group/g1") == "g1"  # any type when none is named
    assert Reference.id_of("Group/g1/_history/1") is None


def test_references_are_immutable_hashable_values() -> None:
    reference = Reference("Patient", "1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        reference.id = "2"  # type: ignore[misc]
    assert {Reference.parse("Patient/1"), reference} == {reference}
    assert Reference("Patient", "1") != Reference("Patient", "1", "1")


def test_iter_references_finds_them_everywhere_in_document_order() -> None:
    careplan = {
        "resourceType": "CarePlan",
        "subject": {"reference": UUID},
        "contained": [{"resourceType": "Goal", "id": "g", "subject": {"reference": "Patient/p"}}],
        "goal": [{"reference": "#g"}],
        "activity": [
            {"reference": {"reference": "ServiceRequest/s1"}},  # activity.reference is a Reference
            {"outcomeReference": [{"reference": "Observation/o1"}, {"display": "no reference"}]},
        ],
        "extension": [{"url": "http://x", "valueReference": {"reference": "Practitioner/d"}}],
    }
    found = [obj[key] for obj, key in iter_references(careplan)]
    assert found == [
        UUID,
        "Patient/p",
        "#g",
        "ServiceRequest/s1",
        "Observation/o1",
        "Practitioner/d",
    ]


def test_iter_references_reaches_into_parameters_parts_and_bundle_entries() -> None:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "value", "valueReference": {"reference": UUID}},
                    {
                        "name": "value",
                        "part": [
                            {"name": "actor", "valueReference": {"reference": "Patient/1"}},
                            {
                                "name": "deeper",
                                "part": [
                                    {
                                        "name": "x",
                                        "resource": {
                                            "resourceType": "Bundle",
                                            "type": "collection",
                                            "entry": [
                                                {
                                                    "resource": {
                                                        "resourceType": "Task",
                                                        "focus": {"reference": "ServiceRequest/2"},
                                                    }
                                                }
                                            ],
                                        },
                                    }
                                ],
                            },
                        ],
                    },
                ],
            }
        ],
    }
    found = [obj[key] for obj, key in iter_references(parameters)]
    assert found == [UUID, "Patient/1", "ServiceRequest/2"]


def test_iter_references_lets_a_transaction_rewrite_urns_in_place() -> None:
    task: dict[str, Any] = {
        "resourceType": "Task",
        "for": {"reference": UUID},
        "focus": {"reference": "urn:uuid:11111111-2222-3333-4444-555555555555"},
        "owner": {"reference": "Organization/partner"},
        "input": [{"type": {"text": "x"}, "valueReference": {"reference": UUID}}],
    }
    assigned = {
        UUID: "Patient/new-1",
        "urn:uuid:11111111-2222-3333-4444-555555555555": "ServiceRequest/new-2",
    }
    for obj, key in iter_references(task):
        reference = Reference.parse(obj[key])
        if reference is not None and reference.is_urn:
            obj[key] = assigned[reference.id]
    assert task["for"] == {"reference": "Patient/new-1"}
    assert task["focus"] == {"reference": "ServiceRequest/new-2"}
    assert task["owner"] == {"reference": "Organization/partner"}
    assert task["input"][0]["valueReference"] == {"reference": "Patient/new-1"}


def test_iter_references_ignores_non_string_and_missing_references() -> None:
    assert list(iter_references({"resourceType": "Patient", "reference": 5})) == []
    assert list(iter_references({"resourceType": "Patient", "name": [{"family": "x"}]})) == []
    assert list(iter_references("Patient/1")) == []


def test_iter_references_survives_deep_nesting() -> None:
    node: dict[str, Any] = {"reference": "Patient/deep"}
    for _ in range(5000):  # deeper than Python's recursion limit
        node = {"part": [node]}
    assert [obj[key] for obj, key in iter_references(node)] == ["Patient/deep"]
