"""Parsing request bodies and validating resources against the R4B models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhir_gateway.errors import InvalidRequest
from fhir_gateway.fhir.validation import parse_json, validate_resource

CORPUS = Path(__file__).resolve().parents[2] / "data"


def expressions(error: InvalidRequest) -> list[str]:
    return [e for issue in error.issues for e in issue.expression]


def invalid(resource: Any, **kwargs: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        validate_resource(resource, **kwargs)
    assert caught.value.status == 400
    return caught.value


PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-1"}],
    "name": [{"family": "Doe", "given": ["Jane"]}],
    "gender": "female",
    "birthDate": "1980-05-06",
}


# ---------------------------------------------------------------------------------------------
# validate_resource
# ---------------------------------------------------------------------------------------------


def test_a_valid_patient_passes() -> None:
    validate_resource(PATIENT)  # raises on failure
    validate_resource(PATIENT, expected_type="Patient")


def test_a_bad_date_names_the_element_and_the_value() -> None:
    error = invalid({**PATIENT, "birthDate": "1980-13-01"})
    assert expressions(error) == ["Patient.birthDate"]
    assert "'1980-13-01'" in error.issues[0].diagnostics
    assert error.message.startswith("Invalid Patient: Patient.birthDate: ")


def test_errors_inside_lists_carry_their_index() -> None:
    error = invalid({**PATIENT, "name": [{"family": "Doe"}, {"given": "Jane"}]})
    assert expressions(error) == ["Patient.name[1].given"]
    assert error.issues[0].code == "structure"


def test_every_failing_element_is_reported() -> None:
    error = invalid(
        {
            "resourceType": "Patient",
            "active": "maybe",
            "name": [{"family": "Doe", "nickname": "JJ"}],
            "extension": [{"valueString": "no url"}],
        }
    )
    assert sorted(expressions(error)) == [
        "Patient.active",
        "Patient.extension[0].url",
        "Patient.name[0].nickname",
    ]
    codes = {i.expression[0]: i.code for i in error.issues}
    assert codes["Patient.name[0].nickname"] == "structure"  # unknown element
    assert codes["Patient.extension[0].url"] == "required"
    assert "(and 2 more)" in error.message


def test_missing_required_elements() -> None:
    error = invalid({"resourceType": "Observation"})
    assert expressions(error) == ["Observation.code"]
    assert error.issues[0].diagnostics == "a required element is missing"
    assert error.issues[0].code == "required"
    # fhir.resources checks required primitives only once the complex elements are valid.
    error = invalid({"resourceType": "Observation", "code": {"text": "mood"}})
    assert expressions(error) == ["Observation.status"]
    assert error.issues[0].code == "required"


def test_errors_in_bundle_entries_name_the_entry() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": PATIENT}, {"resource": {**PATIENT, "gender": 5}}],
    }
    assert expressions(invalid(bundle)) == ["Bundle.entry[1].resource.gender"]


def test_a_primitive_extension_error_names_the_underscore_element() -> None:
    error = invalid({**PATIENT, "_birthDate": 5})
    assert expressions(error) == ["Patient._birthDate"]


def test_a_reference_given_as_a_string() -> None:
    error = invalid({**PATIENT, "managingOrganization": "Organization/1"})
    assert expressions(error) == ["Patient.managingOrganization"]
    assert error.issues[0].diagnostics.startswith("must be a JSON object")


def test_both_types_of_a_choice_element() -> None:
    error = invalid({**PATIENT, "deceasedBoolean": True, "deceasedDateTime": "2020"})
    assert "deceasedBoolean" in error.message and "deceasedDateTime" in error.message


def test_primitive_extensions_and_null_placeholders_are_valid() -> None:
    patient = {
        **PATIENT,
        "_birthDate": {"extension": [{"url": "http://x", "valueCode": "unknown"}]},
        "name": [{"given": ["A", "B"], "_given": [None, {"id": "g2"}]}],
    }
    validate_resource(patient)


@pytest.mark.parametrize(
    ("resource", "expected_type", "message"),
    [
        ([PATIENT], None, "must be a JSON object"),
        ("Patient", None, "must be a JSON object"),
        ({"id": "x"}, None, "no resourceType"),
        ({"resourceType": 5}, None, "no resourceType"),
        ({"resourceType": "Patiant"}, None, "Unknown resourceType 'Patiant'"),
        ({"resourceType": "HumanName"}, None, "Unknown resourceType 'HumanName'"),
        ({"resourceType": "SubscriptionStatus"}, None, "Unknown resourceType"),  # R4B only
        ({"resourceType": "DomainResource"}, None, "Unknown resourceType"),  # abstract
        (PATIENT, "Observation", "resourceType is 'Patient', expected 'Observation'"),
    ],
)
def test_resource_type_problems(resource: Any, expected_type: str | None, message: str) -> None:
    error = invalid(resource, expected_type=expected_type)
    assert message in error.message
    if isinstance(resource, dict):
        assert expressions(error) == ["resourceType"]


@pytest.mark.parametrize(
    ("contained", "reason"),
    [
        ({"resourceType": "Nope", "id": "x"}, "unknown resourceType 'Nope'"),
        ({"resourceType": 7, "id": "x"}, "unknown resourceType 7"),
    ],
)
def test_a_contained_resource_of_unknown_type(contained: dict[str, Any], reason: str) -> None:
    # fhir.resources raises KeyError/TypeError for these: they must still be a 400.
    error = invalid({**PATIENT, "contained": [contained]})
    assert reason in error.message
    assert expressions(error) == ["Patient.contained[0].resourceType"]


def test_errors_in_contained_resources_name_the_element() -> None:
    error = invalid({**PATIENT, "contained": [{"resourceType": "Observation", "status": "final"}]})
    assert expressions(error) == ["Patient.contained[0].code"]


@pytest.mark.parametrize(
    ("change", "where", "reason"),
    [
        ({"name": []}, "Patient.name", "empty arrays"),
        ({"name": [{}]}, "Patient.name[0]", "empty objects"),
        ({"maritalStatus": {}}, "Patient.maritalStatus", "empty objects"),
        ({"birthDate": None}, "Patient.birthDate", "null is only allowed inside arrays"),
        ({"name": [{"family": None}]}, "Patient.name[0].family", "null"),
        ({"id": "a" * 65}, "Patient.id", "at most 64 characters"),
        ({"fhir_comments": ["x"]}, "Patient.fhir_comments", "unknown element"),
    ],
)
def test_fhir_json_rules_the_models_let_through(
    change: dict[str, Any], where: str, reason: str
) -> None:
    error = invalid({**PATIENT, **change})
    assert expressions(error) == [where]
    assert reason in error.message


def test_an_id_of_64_characters_is_valid() -> None:
    validate_resource({**PATIENT, "id": "a" * 64})


def _corpus_resources() -> list[Path]:
    files = sorted((CORPUS / "fhir").rglob("*.json"))
    files += sorted((CORPUS / "hl7v2" / "microsoft-fhir-converter" / "expected").glob("*.json"))
    return files


# Corpus files that are not valid R4 (none of them because of an R4/R4B difference):
# Provenance.agent and RelatedPerson.patient are 1..1/1..* in R4, and the v2-to-FHIR sample
# has a MessageHeader.response.identifier that is not an id, a dateTime with a bad offset, etc.
NOT_VALID_R4 = {
    "FHIR_bundle.hl7_ADT_A01.json": "Bundle.entry[11].resource.response.identifier",
    "ADT01-23-expected.json": "Bundle.entry[12].resource.agent",
    "ADT01-28-expected.json": "Bundle.entry[10].resource.agent",
    "ADT04-28-expected.json": "Bundle.entry[13].resource.agent",
    # HumanName.use and ContactPoint.system outside their required value sets (the JSON schema)
    "ADT04-23-expected.json": "Bundle.entry[12].resource.name[0].use",
}


@pytest.mark.parametrize("path", _corpus_resources(), ids=lambda p: p.name)
def test_corpus_resources(path: Path) -> None:
    resource = json.loads(path.read_text())
    if path.name in NOT_VALID_R4:
        assert NOT_VALID_R4[path.name] in expressions(invalid(resource))
    else:
        validate_resource(resource)


# ---------------------------------------------------------------------------------------------
# parse_json
# ---------------------------------------------------------------------------------------------


def test_parse_json() -> None:
    assert parse_json(b'{"resourceType": "Patient", "active": true}', max_depth=10) == {
        "resourceType": "Patient",
        "active": True,
    }
    assert parse_json('{"a": [1, 2.5, null]}', max_depth=10) == {"a": [1, 2.5, None]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{\n  "a": 1,\n}', "line 2, column 9"),
        (b'{"a": ', "unexpected end of data"),
        (b"", "empty"),
        (b'{"a": "\xff"}', "UTF-8"),
        (b"{'a': 1}", "line 1, column 2"),
        (b'{"a": NaN}', "Invalid JSON"),
    ],
)
def test_invalid_json_says_where(body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match="Invalid JSON") as caught:
        parse_json(body, max_depth=10)
    assert message in caught.value.message
    assert caught.value.status == 400


def nested(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"[1]" + b"}" * (depth - 1)


def test_nesting_up_to_max_depth_is_accepted() -> None:
    assert parse_json(nested(5), max_depth=5) == {"a": {"a": {"a": {"a": [1]}}}}
    assert parse_json(b"[[[]]]", max_depth=3) == [[[]]]
    assert parse_json(b"1", max_depth=0) == 1


@pytest.mark.parametrize(
    "body",
    [
        nested(6),
        b"[[[[[[]]]]]]",
        b'[1, {"a": [{"b": [{"c": [1]}]}]}]',
        b'{"a": 1, "b": {"c": {"d": {"e": {"f": {}}}}}}',
    ],
)
def test_nesting_beyond_max_depth_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidRequest, match="deeper than 5 levels"):
        parse_json(body, max_depth=5)


def test_hostile_nesting_is_refused_without_recursion() -> None:
    body = b"[" * 200_000 + b"]" * 200_000
    with pytest.raises(InvalidRequest, match="deeper than 64 levels"):
        parse_json(body, max_depth=64)
    with pytest.raises(InvalidRequest, match="deeper than 5000 levels"):
        parse_json(body, max_depth=5000)  # past orjson's own limit: still a 400
