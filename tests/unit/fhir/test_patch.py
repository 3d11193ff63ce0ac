"""JSON Patch (RFC 6902) and FHIRPath Patch (FHIR R4) applied to resource dicts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fhir_gateway.errors import InvalidRequest, PatchError
from fhir_gateway.fhir.patch import apply_fhirpath_patch, apply_json_patch

# ---------------------------------------------------------------------------------------------
# JSON Patch: RFC 6902 appendix A
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "ops", "expected"),
    [
        pytest.param(
            {"foo": "bar"},
            [{"op": "add", "path": "/baz", "value": "qux"}],
            {"baz": "qux", "foo": "bar"},
            id="A.1 add an object member",
        ),
        pytest.param(
            {"foo": ["bar", "baz"]},
            [{"op": "add", "path": "/foo/1", "value": "qux"}],
            {"foo": ["bar", "qux", "baz"]},
            id="A.2 add an array element",
        ),
        pytest.param(
            {"baz": "qux", "foo": "bar"},
            [{"op": "remove", "path": "/baz"}],
            {"foo": "bar"},
            id="A.3 remove an object member",
        ),
        pytest.param(
            {"foo": ["bar", "qux", "baz"]},
            [{"op": "remove", "path": "/foo/1"}],
            {"foo": ["bar", "baz"]},
            id="A.4 remove an array element",
        ),
        pytest.param(
            {"baz": "qux", "foo": "bar"},
            [{"op": "replace", "path": "/baz", "value": "boo"}],
            {"baz": "boo", "foo": "bar"},
            id="A.5 replace a value",
        ),
        pytest.param(
            {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
            [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
            {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
            id="A.6 move a value",
        ),
        pytest.param(
            {"foo": ["all", "grass", "cows", "eat"]},
            [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
            {"foo": ["all", "cows", "eat", "grass"]},
            id="A.7 move an array element",
        ),
        pytest.param(
            {"baz": "qux", "foo": ["a", 2, "c"]},
            [
                {"op": "test", "path": "/baz", "value": "qux"},
                {"op": "test", "path": "/foo/1", "value": 2},
            ],
            {"baz": "qux", "foo": ["a", 2, "c"]},
            id="A.8 test a value: success",
        ),
        pytest.param(
            {"foo": "bar"},
            [{"op": "add", "path": "/child", "value": {"grandchild": {"x": 1}}}],
            {"foo": "bar", "child": {"grandchild": {"x": 1}}},
            id="A.10 add a nested member object",
        ),
        pytest.param(
            {"foo": "bar"},
            [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
            {"foo": "bar", "baz": "qux"},
            id="A.11 ignore unrecognised members",
        ),
        pytest.param(
            {"/": 9, "~1": 10},
            [{"op": "test", "path": "/~01", "value": 10}],
            {"/": 9, "~1": 10},
            id="A.14 ~ escape ordering",
        ),
        pytest.param(
            {"foo": ["bar"]},
            [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
            {"foo": ["bar", ["abc", "def"]]},
            id="A.16 add an array value with -",
        ),
    ],
)
def test_rfc6902_appendix_a(doc: dict[str, Any], ops: list[Any], expected: dict[str, Any]) -> None:
    assert apply_json_patch(doc, ops) == expected


@pytest.mark.parametrize(
    ("doc", "ops", "reason"),
    [
        pytest.param(
            {"baz": "qux"},
            [{"op": "test", "path": "/baz", "value": "bar"}],
            "test failed",
            id="A.9 test a value: error",
        ),
        pytest.param(
            {"foo": "bar"},
            [{"op": "add", "path": "/baz/bat", "value": "qux"}],
            "path not found",
            id="A.12 add to a nonexistent target",
        ),
        pytest.param(
            {"/": 9, "~1": 10},
            [{"op": "test", "path": "/~01", "value": "10"}],
            "test failed",
            id="A.15 a string is not a number",
        ),
    ],
)
def test_rfc6902_appendix_a_errors(doc: dict[str, Any], ops: list[Any], reason: str) -> None:
    with pytest.raises(PatchError, match=reason):
        apply_json_patch(doc, ops)


def test_json_patch_slash_and_tilde_are_unescaped() -> None:
    doc = {"a/b": 1, "m~n": 2}
    ops = [
        {"op": "replace", "path": "/a~1b", "value": 10},
        {"op": "replace", "path": "/m~0n", "value": 20},
    ]
    assert apply_json_patch(doc, ops) == {"a/b": 10, "m~n": 20}


def test_json_patch_copy_is_independent_of_its_source() -> None:
    doc = {"a": {"b": [1]}}
    ops = [
        {"op": "copy", "from": "/a", "path": "/c"},
        {"op": "add", "path": "/c/b/-", "value": 2},
    ]
    assert apply_json_patch(doc, ops) == {"a": {"b": [1]}, "c": {"b": [1, 2]}}


def test_json_patch_replace_and_move_on_the_whole_document() -> None:
    assert apply_json_patch({"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}]) == {
        "b": 2
    }
    ops = [{"op": "move", "from": "/a", "path": "/b"}]
    assert apply_json_patch({"a": 1}, ops) == {"b": 1}


def test_json_patch_test_compares_objects_regardless_of_key_order() -> None:
    doc = {"a": {"x": 1, "y": [1, 2]}}
    assert apply_json_patch(doc, [{"op": "test", "path": "/a", "value": {"y": [1, 2], "x": 1}}])


@pytest.mark.parametrize(
    ("actual", "expected"),
    [(True, 1), (1, True), (0, False), ([1, 2], [2, 1]), ({"a": 1}, {"a": 1, "b": 2}), (None, 0)],
)
def test_json_patch_test_is_stricter_than_python_equality(actual: Any, expected: Any) -> None:
    with pytest.raises(PatchError, match="test failed"):
        apply_json_patch({"v": actual}, [{"op": "test", "path": "/v", "value": expected}])


def test_json_patch_test_accepts_equal_numbers_of_different_notation() -> None:
    assert apply_json_patch({"v": 1}, [{"op": "test", "path": "/v", "value": 1.0}]) == {"v": 1}


def test_json_patch_does_not_mutate_its_arguments() -> None:
    doc = {"name": [{"given": ["A"]}], "active": True}
    ops = [
        {"op": "add", "path": "/name/0/given/-", "value": "B"},
        {"op": "remove", "path": "/active"},
        {"op": "add", "path": "/identifier", "value": [{"value": "1"}]},
    ]
    doc_before, ops_before = copy.deepcopy(doc), copy.deepcopy(ops)
    result = apply_json_patch(doc, ops)
    assert doc == doc_before and ops == ops_before
    result["identifier"][0]["value"] = "changed"
    assert ops == ops_before  # the result shares no structure with the patch either


def test_json_patch_failure_names_operation_index_and_path() -> None:
    patient = {"resourceType": "Patient", "name": [{"family": "A"}]}
    ops = [
        {"op": "test", "path": "/name/0/family", "value": "A"},
        {"op": "remove", "path": "/name/3/family"},
    ]
    with pytest.raises(PatchError) as caught:
        apply_json_patch(patient, ops)
    error = caught.value
    assert error.status == 422
    assert "operation 1 (remove /name/3/family)" in error.message
    assert "out of range" in error.message
    assert error.issues[0].expression == ["Patient.name[3].family"]


@pytest.mark.parametrize(
    ("ops", "reason"),
    [
        ([{"op": "frobnicate", "path": "/a"}], "unknown op 'frobnicate'"),
        ([{"path": "/a"}], "unknown op None"),
        ([{"op": "add", "value": 1}], "'path' is missing"),
        ([{"op": "add", "path": "/b"}], "'value' is missing"),
        ([{"op": "replace", "path": "/b", "value": 1}], "path not found"),
        ([{"op": "remove", "path": "/zzz"}], "path not found"),
        ([{"op": "move", "path": "/b"}], "'from' is missing"),
        ([{"op": "copy", "from": "/nope", "path": "/b"}], "path not found"),
        ([{"op": "move", "from": "/list", "path": "/list/0"}], "its own children"),
        ([{"op": "add", "path": "a", "value": 1}], "must be empty or start with '/'"),
        ([{"op": "add", "path": "/a~2", "value": 1}], "'~' not followed by 0 or 1"),
        ([{"op": "add", "path": "/list/01", "value": 1}], "'01' is not an array index"),
        ([{"op": "add", "path": "/list/3", "value": 1}], "out of range"),
        ([{"op": "replace", "path": "/list/2", "value": 1}], "out of range"),
        ([{"op": "remove", "path": "/list/-"}], "'-' is not an array index"),
        ([{"op": "add", "path": "/a/b", "value": 1}], "not an object or array"),
        ([{"op": "remove", "path": ""}], "cannot remove the whole document"),
    ],
)
def test_json_patch_errors(ops: list[Any], reason: str) -> None:
    with pytest.raises(PatchError, match=reason):
        apply_json_patch({"a": 1, "list": [1, 2]}, ops)


def test_json_patch_must_leave_an_object() -> None:
    with pytest.raises(PatchError, match="did not leave a JSON object"):
        apply_json_patch({"a": 1}, [{"op": "replace", "path": "", "value": [1]}])


@pytest.mark.parametrize("document", [{"op": "add"}, "[]", None, [{"op": "add"}, "x"], [[]]])
def test_json_patch_that_is_not_a_list_of_objects_is_a_bad_request(document: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        apply_json_patch({"a": 1}, document)
    assert caught.value.status == 400


def test_json_patch_removes_containers_the_patch_left_empty() -> None:
    # FHIR forbids empty arrays: removing the only identifier removes the element.
    patient = {"resourceType": "Patient", "identifier": [{"value": "1"}], "active": True}
    result = apply_json_patch(patient, [{"op": "remove", "path": "/identifier/0"}])
    assert result == {"resourceType": "Patient", "active": True}


def test_json_patch_empty_list_can_be_refilled_within_the_same_patch() -> None:
    patient = {"resourceType": "Patient", "identifier": [{"value": "1"}]}
    ops = [
        {"op": "remove", "path": "/identifier/0"},
        {"op": "add", "path": "/identifier/-", "value": {"value": "2"}},
    ]
    assert apply_json_patch(patient, ops)["identifier"] == [{"value": "2"}]


def test_json_patch_on_a_patient_birth_date() -> None:
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"}
    ops = [
        {"op": "test", "path": "/birthDate", "value": "1970-01-01"},
        {"op": "replace", "path": "/birthDate", "value": "1971-02-03"},
    ]
    assert apply_json_patch(patient, ops)["birthDate"] == "1971-02-03"


# ---------------------------------------------------------------------------------------------
# FHIRPath Patch
# ---------------------------------------------------------------------------------------------


def op(kind: str, path: str, **parts: Any) -> dict[str, Any]:
    """One `operation` parameter. `value` is a value part body: {"valueString": …} or {"part": …}."""
    out: list[dict[str, Any]] = [
        {"name": "type", "valueCode": kind},
        {"name": "path", "valueString": path},
    ]
    for name, value in parts.items():
        if name == "value":
            out.append({"name": "value", **value})
        elif name == "name":
            out.append({"name": "name", "valueString": value})
        else:
            out.append({"name": name, "valueInteger": value})
    return {"name": "operation", "part": out}


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(operations)}


def part(name: str, **value: Any) -> dict[str, Any]:
    return {"name": name, **value}


@pytest.fixture
def patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [
            {"system": "urn:oid:1.2.3", "value": "MRN-1"},
            {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "000-00-0000"},
            {"system": "urn:oid:1.2.3", "value": "MRN-OLD", "use": "old"},
        ],
        "name": [
            {"use": "official", "family": "Doe", "given": ["Jane", "Q"]},
            {"use": "nickname", "given": ["JJ"]},
        ],
        "gender": "female",
        "birthDate": "1980-05-06",
    }


def test_fhirpath_patch_spec_examples(patient: dict[str, Any]) -> None:
    # The operations of http://hl7.org/fhir/R4/fhirpatch.html, one after the other.
    del patient["birthDate"]
    result = apply_fhirpath_patch(
        patient,
        patch(
            op("add", "Patient", name="birthDate", value={"valueDate": "1930-01-01"}),
            op("insert", "Patient.identifier", index=0, value={"valueIdentifier": {"value": "X"}}),
            op("replace", "Patient.gender", value={"valueCode": "other"}),
            op("move", "Patient.identifier", source=0, destination=3),
            op("delete", "Patient.name[1]"),
        ),
    )
    assert result["birthDate"] == "1930-01-01"
    assert result["gender"] == "other"
    assert [i["value"] for i in result["identifier"]] == ["MRN-1", "000-00-0000", "MRN-OLD", "X"]
    assert result["name"] == [{"use": "official", "family": "Doe", "given": ["Jane", "Q"]}]


def test_delete_then_add_sets_a_singleton(patient: dict[str, Any]) -> None:
    # The HL7 adapter's way to set Patient.birthDate whether or not it is there.
    parameters = patch(
        op("delete", "Patient.birthDate"),
        op("add", "Patient", name="birthDate", value={"valueDate": "1999-12-31"}),
    )
    assert apply_fhirpath_patch(patient, parameters)["birthDate"] == "1999-12-31"
    del patient["birthDate"]
    assert apply_fhirpath_patch(patient, parameters)["birthDate"] == "1999-12-31"


DISPOSITION_HOME = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/discharge-disposition", "code": "home"}
    ]
}
DISPOSITION_SNF = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/discharge-disposition", "code": "snf"}
    ]
}


@pytest.mark.parametrize(
    "hospitalization",
    [
        {"dischargeDisposition": DISPOSITION_HOME},
        {"dischargeDisposition": DISPOSITION_HOME, "preAdmissionIdentifier": {"value": "PA1"}},
        {"preAdmissionIdentifier": {"value": "PA1"}},
    ],
    ids=["only-disposition", "with-sibling", "no-disposition-yet"],
)
def test_delete_then_add_sets_the_discharge_disposition(hospitalization: dict[str, Any]) -> None:
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "IMP"},
        "hospitalization": hospitalization,
    }
    parameters = patch(
        op("delete", "Encounter.hospitalization.dischargeDisposition"),
        op(
            "add",
            "Encounter.hospitalization",
            name="dischargeDisposition",
            value={"valueCodeableConcept": DISPOSITION_SNF},
        ),
    )
    result = apply_fhirpath_patch(encounter, parameters)
    expected = {k: v for k, v in hospitalization.items() if k != "dischargeDisposition"}
    assert result["hospitalization"] == {**expected, "dischargeDisposition": DISPOSITION_SNF}
    assert result["class"] == {"code": "IMP"}


def test_delete_alone_removes_the_emptied_parent() -> None:
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "IMP"},
        "hospitalization": {"dischargeDisposition": DISPOSITION_HOME},
    }
    parameters = patch(op("delete", "Encounter.hospitalization.dischargeDisposition"))
    result = apply_fhirpath_patch(encounter, parameters)
    assert "hospitalization" not in result


def test_delete_all_names_then_add_two(patient: dict[str, Any]) -> None:
    result = apply_fhirpath_patch(
        patient,
        patch(
            op("delete", "Patient.name"),
            op("add", "Patient", name="name", value={"valueHumanName": {"family": "Roe"}}),
            op(
                "add",
                "Patient",
                name="name",
                value={
                    "part": [
                        part("use", valueCode="maiden"),
                        part("family", valueString="Poe"),
                        part("given", valueString="Ann"),
                        part("given", valueString="Lee"),
                    ]
                },
            ),
        ),
    )
    assert result["name"] == [
        {"family": "Roe"},
        {"use": "maiden", "family": "Poe", "given": ["Ann", "Lee"]},
    ]


def test_where_filter_on_identifier_system(patient: dict[str, Any]) -> None:
    result = apply_fhirpath_patch(
        patient,
        patch(
            op(
                "replace",
                "Patient.identifier.where(system = 'http://hl7.org/fhir/sid/us-ssn').value",
                value={"valueString": "123-45-6789"},
            )
        ),
    )
    assert [i["value"] for i in result["identifier"]] == ["MRN-1", "123-45-6789", "MRN-OLD"]


def test_where_filter_with_and(patient: dict[str, Any]) -> None:
    result = apply_fhirpath_patch(
        patient,
        patch(op("delete", "Patient.identifier.where(system='urn:oid:1.2.3' and value='MRN-OLD')")),
    )
    assert [i["value"] for i in result["identifier"]] == ["MRN-1", "000-00-0000"]


def test_delete_matching_several_elements_deletes_them_all(patient: dict[str, Any]) -> None:
    result = apply_fhirpath_patch(
        patient, patch(op("delete", "Patient.identifier.where(system = 'urn:oid:1.2.3')"))
    )
    assert result["identifier"] == [
        {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "000-00-0000"}
    ]


def test_delete_of_an_absent_element_changes_nothing(patient: dict[str, Any]) -> None:
    parameters = patch(
        op("delete", "Patient.deceased"),
        op("delete", "Patient.identifier.where(system = 'urn:nowhere')"),
        op("delete", "Patient.name[7]"),
        op("delete", "Patient.contact.name"),
    )
    assert apply_fhirpath_patch(patient, parameters) == patient


def test_delete_across_lists_prunes_emptied_objects(patient: dict[str, Any]) -> None:
    result = apply_fhirpath_patch(patient, patch(op("delete", "Patient.name.given")))
    assert result["name"] == [{"use": "official", "family": "Doe"}, {"use": "nickname"}]
    result = apply_fhirpath_patch(
        patient, patch(op("delete", "Patient.name.given"), op("delete", "Patient.name.use"))
    )
    assert result["name"] == [{"family": "Doe"}]


def test_delete_takes_the_primitive_extension_along() -> None:
    patient = {
        "resourceType": "Patient",
        "birthDate": "1980",
        "_birthDate": {"extension": [{"url": "http://x", "valueString": "y"}]},
        "name": [{"given": ["A", "B"], "_given": [None, {"id": "g2"}]}],
    }
    result = apply_fhirpath_patch(
        patient,
        patch(
            op("delete", "Patient.birthDate"),
            op("delete", "Patient.name.given.where($this = 'A')"),
        ),
    )
    assert "_birthDate" not in result and "birthDate" not in result
    assert result["name"] == [{"given": ["B"], "_given": [{"id": "g2"}]}]


def test_indexers_first_and_last(patient: dict[str, Any]) -> None:
    result = apply_fhirpath_patch(
        patient,
        patch(
            op("replace", "Patient.name[1].given[0]", value={"valueString": "Jay"}),
            op("delete", "Patient.identifier.last()"),
            op("replace", "Patient.identifier.first().value", value={"valueString": "MRN-9"}),
        ),
    )
    assert result["name"][1]["given"] == ["Jay"]
    assert [i["value"] for i in result["identifier"]] == ["MRN-9", "000-00-0000"]


def test_add_to_a_singleton_that_has_a_value_is_an_error(patient: dict[str, Any]) -> None:
    parameters = patch(
        op("replace", "Patient.gender", value={"valueCode": "male"}),
        op("add", "Patient", name="birthDate", value={"valueDate": "2001-01-01"}),
    )
    with pytest.raises(PatchError) as caught:
        apply_fhirpath_patch(patient, parameters)
    error = caught.value
    assert error.status == 422
    assert error.message.startswith("FHIRPath Patch operation 1 (add Patient)")
    assert "'birthDate' already has a value" in error.message
    assert error.issues[0].expression == ["Patient"]


def test_add_derives_repetition_from_the_model(patient: dict[str, Any]) -> None:
    result = apply_fhirpath_patch(
        patient,
        patch(
            op(
                "add",
                "Patient.name.where(use = 'nickname')",
                name="given",
                value={"valueString": "J"},
            ),
            op("add", "Patient", name="telecom", value={"valueContactPoint": {"value": "555"}}),
            op("add", "Patient", name="active", value={"valueBoolean": False}),
            op(
                "add",
                "Patient",
                name="maritalStatus",
                value={"valueCodeableConcept": {"text": "married"}},
            ),
        ),
    )
    assert result["name"][1]["given"] == ["JJ", "J"]
    assert result["telecom"] == [{"value": "555"}]  # repeating: a list even with one item
    assert result["active"] is False
    assert result["maritalStatus"] == {"text": "married"}  # singleton: no list


def test_add_builds_a_complex_value_from_parts(patient: dict[str, Any]) -> None:
    identifier = {
        "part": [
            part("system", valueUri="urn:oid:9.9"),
            part("value", valueString="N-1"),
            part(
                "type",
                part=[
                    part(
                        "coding",
                        part=[
                            part(
                                "system", valueUri="http://terminology.hl7.org/CodeSystem/v2-0203"
                            ),
                            part("code", valueCode="MR"),
                        ],
                    )
                ],
            ),
            part("period", valuePeriod={"start": "2020-01-01"}),
        ]
    }
    result = apply_fhirpath_patch(
        patient, patch(op("add", "Patient", name="identifier", value=identifier))
    )
    assert result["identifier"][-1] == {
        "system": "urn:oid:9.9",
        "value": "N-1",
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]
        },
        "period": {"start": "2020-01-01"},
    }


def test_add_builds_an_extension_with_a_choice_value_from_parts(patient: dict[str, Any]) -> None:
    extension = {"part": [part("url", valueUri="http://x/ext"), part("value", valueCode="abc")]}
    result = apply_fhirpath_patch(
        patient, patch(op("add", "Patient", name="extension", value=extension))
    )
    assert result["extension"] == [{"url": "http://x/ext", "valueCode": "abc"}]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("valueString", "x"),
        ("valueInteger", 3),
        ("valueDecimal", 1.5),
        ("valueBoolean", True),
        ("valueDateTime", "2024-01-02T03:04:05Z"),
        ("valueReference", {"reference": "Patient/1"}),
        ("valueIdentifier", {"system": "urn:x", "value": "1"}),
        ("valueHumanName", {"family": "F"}),
        ("valueAddress", {"city": "Boston"}),
        ("valuePeriod", {"start": "2024"}),
        ("valueCoding", {"code": "c"}),
        ("valueQuantity", {"value": 1, "unit": "mg"}),
    ],
)
def test_any_value_x_is_taken_as_is(key: str, value: Any) -> None:
    patient = {"resourceType": "Patient"}
    result = apply_fhirpath_patch(
        patient,
        patch(
            op(
                "add",
                "Patient",
                name="extension",
                value={"part": [part("url", valueUri="http://x"), part("value", **{key: value})]},
            )
        ),
    )
    assert result["extension"] == [{"url": "http://x", key: value}]


def test_add_to_a_choice_element_takes_the_type_from_the_value(patient: dict[str, Any]) -> None:
    result = apply_fhirpath_patch(
        patient, patch(op("add", "Patient", name="deceased", value={"valueBoolean": True}))
    )
    assert result["deceasedBoolean"] is True
    # Another type of the same choice is "already has a value", too.
    with pytest.raises(PatchError, match="'deceased' already has a value"):
        apply_fhirpath_patch(
            result,
            patch(op("add", "Patient", name="deceased", value={"valueDateTime": "2020-01-01"})),
        )
    with pytest.raises(PatchError, match="cannot be of type Quantity"):
        apply_fhirpath_patch(
            patient, patch(op("add", "Patient", name="deceased", value={"valueQuantity": {}}))
        )


def test_replace_a_choice_value_may_change_its_type() -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "mood"},
        "valueQuantity": {"value": 3},
    }
    result = apply_fhirpath_patch(
        observation, patch(op("replace", "Observation.value", value={"valueString": "low"}))
    )
    assert result["valueString"] == "low" and "valueQuantity" not in result


def test_replace_needs_exactly_one_match(patient: dict[str, Any]) -> None:
    with pytest.raises(PatchError, match="matches 3 elements; replace needs exactly one"):
        apply_fhirpath_patch(
            patient, patch(op("replace", "Patient.identifier.value", value={"valueString": "x"}))
        )
    with pytest.raises(PatchError, match="matches no element"):
        apply_fhirpath_patch(
            patient, patch(op("replace", "Patient.deceased", value={"valueBoolean": True}))
        )


def test_insert_checks_its_index(patient: dict[str, Any]) -> None:
    value = {"valueIdentifier": {"value": "new"}}
    result = apply_fhirpath_patch(
        patient, patch(op("insert", "Patient.identifier", index=3, value=value))
    )
    assert result["identifier"][3] == {"value": "new"}
    result = apply_fhirpath_patch(
        patient,
        patch(
            op("insert", "Patient.telecom", index=0, value={"valueContactPoint": {"value": "1"}})
        ),
    )
    assert result["telecom"] == [{"value": "1"}]  # an absent list is an empty one
    with pytest.raises(PatchError, match="index 4 is out of range"):
        apply_fhirpath_patch(
            patient, patch(op("insert", "Patient.identifier", index=4, value=value))
        )
    with pytest.raises(PatchError, match="index -1 is out of range"):
        apply_fhirpath_patch(
            patient, patch(op("insert", "Patient.identifier", index=-1, value=value))
        )
    with pytest.raises(PatchError, match="'gender' is not a repeating element"):
        apply_fhirpath_patch(
            patient, patch(op("insert", "Patient.gender", index=0, value={"valueCode": "male"}))
        )


def test_insert_into_a_nested_list(patient: dict[str, Any]) -> None:
    result = apply_fhirpath_patch(
        patient,
        patch(
            op(
                "insert",
                "Patient.name.where(use='official').given",
                index=1,
                value={"valueString": "Middle"},
            )
        ),
    )
    assert result["name"][0]["given"] == ["Jane", "Middle", "Q"]


def test_move_checks_source_and_destination(patient: dict[str, Any]) -> None:
    result = apply_fhirpath_patch(
        patient, patch(op("move", "Patient.identifier", source=2, destination=0))
    )
    assert [i["value"] for i in result["identifier"]] == ["MRN-OLD", "MRN-1", "000-00-0000"]
    with pytest.raises(PatchError, match="source 3 is out of range"):
        apply_fhirpath_patch(
            patient, patch(op("move", "Patient.identifier", source=3, destination=0))
        )
    with pytest.raises(PatchError, match="destination 3 is out of range"):
        apply_fhirpath_patch(
            patient, patch(op("move", "Patient.identifier", source=0, destination=3))
        )
    with pytest.raises(PatchError, match="source 0 is out of range"):
        apply_fhirpath_patch(patient, patch(op("move", "Patient.telecom", source=0, destination=0)))


@pytest.mark.parametrize(
    ("operation", "reason"),
    [
        (op("replace", "Patient.foo", value={"valueString": "x"}), "Patient has no element 'foo'"),
        (
            op("add", "Patient", name="foo", value={"valueString": "x"}),
            "Patient has no element 'foo'",
        ),
        (
            op("delete", "Observation.status"),
            "the path is for Observation, the resource is a Patient",
        ),
        (op("add", "Patient.name", name="text", value={"valueString": "x"}), "matches 2 elements"),
        (op("add", "Patient.gender", name="id", value={"valueString": "x"}), "primitive value"),
        (
            op("add", "Patient", name="deceased", value={"part": [part("x", valueString="y")]}),
            "choice element",
        ),
        (
            op(
                "add", "Patient", name="identifier", value={"part": [part("nope", valueString="y")]}
            ),
            "Identifier has no element 'nope'",
        ),
        (
            op(
                "add",
                "Patient",
                name="maritalStatus",
                value={"part": [part("text", valueString="a"), part("text", valueString="b")]},
            ),
            "'text' does not repeat but is given twice",
        ),
        (op("delete", "Patient"), "cannot delete the resource itself"),
        (
            op("replace", "Patient", value={"valueString": "x"}),
            "cannot replace the resource itself",
        ),
        (
            op("insert", "Patient.identifier[0]", index=0, value={"valueString": "x"}),
            "ending in a repeating element",
        ),
    ],
)
def test_fhirpath_patch_errors_are_unprocessable(
    patient: dict[str, Any], operation: dict[str, Any], reason: str
) -> None:
    with pytest.raises(PatchError, match=reason) as caught:
        apply_fhirpath_patch(patient, patch(operation))
    assert caught.value.status == 422
    assert caught.value.message.startswith("FHIRPath Patch operation 0 (")


@pytest.mark.parametrize(
    ("parameters", "reason"),
    [
        ({"resourceType": "Patient"}, "must be a Parameters resource"),
        ([], "must be a Parameters resource"),
        ({"resourceType": "Parameters", "parameter": {}}, "must be an array"),
        (patch({"name": "op", "part": []}), "must be named 'operation'"),
        (patch({"name": "operation"}), "needs a 'part' array"),
        (
            patch({"name": "operation", "part": [part("type", valueCode="upsert")]}),
            "type must be one of",
        ),
        (patch(op("add", "Patient", name="x")), r"add needs the part\(s\) value"),
        (
            patch(op("insert", "Patient.identifier", value={"valueString": "x"})),
            r"insert needs the part\(s\) index",
        ),
        (
            patch(
                {
                    "name": "operation",
                    "part": [part("type", valueCode="delete"), part("path", valueInteger=1)],
                }
            ),
            "part 'path' needs one of valueString",
        ),
        (
            patch(
                {
                    "name": "operation",
                    "part": [
                        part("type", valueCode="delete"),
                        part("path", valueString="Patient"),
                        part("path", valueString="Patient"),
                    ],
                }
            ),
            "part 'path' is given twice",
        ),
        (
            patch(
                {
                    "name": "operation",
                    "part": [part("type", valueCode="delete"), part("pth", valueString="Patient")],
                }
            ),
            "unknown part 'pth'",
        ),
        (
            patch(
                {
                    "name": "operation",
                    "part": [
                        part("type", valueCode="move"),
                        part("path", valueString="Patient.name"),
                        part("source", valueBoolean=True),
                        part("destination", valueInteger=0),
                    ],
                }
            ),
            "part 'source' needs one of valueInteger",
        ),
        (
            patch(op("replace", "Patient.gender", value={"valueCode": "x", "valueString": "y"})),
            "exactly one value",
        ),
        (patch(op("replace", "Patient.gender", value={})), "exactly one value"),
        (patch(op("add", "Patient", name="identifier", value={"part": []})), "non-empty array"),
        (patch(op("delete", "Patient.name.where(use = 'x'")), "unbalanced parentheses"),
        (
            patch(op("delete", "Patient.managingOrganization.resolve()")),
            r"unsupported function resolve\(\)",
        ),
        (patch(op("delete", "Patient..name")), "expected an element name"),
        (patch(op("delete", "Patient.name.")), "a path is Type"),
        (patch(op("delete", "Patient.name.where(use # 1)")), "invalid where"),
        (patch(op("delete", "Patient.name[x]")), "unexpected '\\['"),
    ],
)
def test_malformed_fhirpath_patch_is_a_bad_request(
    patient: dict[str, Any], parameters: Any, reason: str
) -> None:
    with pytest.raises(InvalidRequest, match=reason) as caught:
        apply_fhirpath_patch(patient, parameters)
    assert caught.value.status == 400


def test_where_predicate_failing_at_run_time_is_unprocessable(patient: dict[str, Any]) -> None:
    # fhirpathpy compiles lazily: some malformed predicates only fail when evaluated.
    with pytest.raises(PatchError, match=r"where\(\) could not be evaluated"):
        apply_fhirpath_patch(patient, patch(op("delete", "Patient.name.where(use = = )")))


def test_malformed_operation_is_named_by_its_index(patient: dict[str, Any]) -> None:
    parameters = patch(op("delete", "Patient.gender"), op("delete", "Patient.name.where("))
    with pytest.raises(InvalidRequest) as caught:
        apply_fhirpath_patch(patient, parameters)
    assert caught.value.issues[0].expression == ["Parameters.parameter[1]"]
    assert "operation 1" in caught.value.message


def test_operations_apply_in_order_and_stop_at_the_first_failure(patient: dict[str, Any]) -> None:
    # add then replace works; replace before add fails (nothing to replace yet)
    ok = patch(
        op("add", "Patient", name="deceased", value={"valueBoolean": False}),
        op("replace", "Patient.deceased", value={"valueBoolean": True}),
    )
    assert apply_fhirpath_patch(patient, ok)["deceasedBoolean"] is True
    with pytest.raises(PatchError, match="operation 0"):
        apply_fhirpath_patch(patient, patch(*reversed(ok["parameter"])))


def test_fhirpath_patch_does_not_mutate_its_arguments(patient: dict[str, Any]) -> None:
    parameters = patch(
        op("delete", "Patient.name"),
        op("add", "Patient", name="name", value={"valueHumanName": {"family": "New"}}),
        op("insert", "Patient.identifier", index=0, value={"valueIdentifier": {"value": "I"}}),
        op("move", "Patient.identifier", source=0, destination=1),
    )
    patient_before, parameters_before = copy.deepcopy(patient), copy.deepcopy(parameters)
    result = apply_fhirpath_patch(patient, parameters)
    assert patient == patient_before and parameters == parameters_before
    result["name"][0]["family"] = "changed"
    assert parameters == parameters_before


def test_empty_parameters_change_nothing(patient: dict[str, Any]) -> None:
    assert apply_fhirpath_patch(patient, {"resourceType": "Parameters"}) == patient


def test_paths_may_omit_the_type_and_reach_into_contained_resources() -> None:
    patient = {
        "resourceType": "Patient",
        "contained": [
            {"resourceType": "Organization", "id": "o1", "name": "Old"},
            {"resourceType": "Practitioner", "id": "d1"},
        ],
    }
    result = apply_fhirpath_patch(
        patient,
        patch(
            op("replace", "contained.where(id = 'o1').name", value={"valueString": "New"}),
            # Practitioner.name repeats although Organization.name does not: typed per resource
            op(
                "add",
                "Patient.contained.where(id = 'd1')",
                name="name",
                value={"valueHumanName": {"family": "Who"}},
            ),
        ),
    )
    assert result["contained"][0]["name"] == "New"
    assert result["contained"][1]["name"] == [{"family": "Who"}]


def test_encounter_class_keyword_element() -> None:
    # `class` is `class_` in the Python model; the JSON name is what paths use.
    encounter = {"resourceType": "Encounter", "status": "planned", "class": {"code": "AMB"}}
    result = apply_fhirpath_patch(
        encounter, patch(op("replace", "Encounter.class.code", value={"valueCode": "IMP"}))
    )
    assert result["class"] == {"code": "IMP"}


def test_list_edits_keep_the_primitive_extension_array_aligned() -> None:
    patient = {
        "resourceType": "Patient",
        "name": [{"given": ["A", "B"], "_given": [None, {"id": "b"}]}],
    }
    result = apply_fhirpath_patch(
        patient,
        patch(
            op("insert", "Patient.name[0].given", index=0, value={"valueString": "Z"}),
            op("add", "Patient.name[0]", name="given", value={"valueString": "C"}),
            op("move", "Patient.name[0].given", source=2, destination=3),
        ),
    )
    name = result["name"][0]
    assert name["given"] == ["Z", "A", "C", "B"]
    assert name["_given"] == [None, None, None, {"id": "b"}]


def test_a_malformed_path_is_reported_before_any_operation_runs(patient: dict[str, Any]) -> None:
    parameters = patch(
        op("replace", "Patient.deceased", value={"valueBoolean": True}),  # would be a 422
        op("delete", "Patient.name.where(use = 'x'"),
    )
    with pytest.raises(InvalidRequest, match="operation 1: path .*unbalanced parentheses"):
        apply_fhirpath_patch(patient, parameters)


def test_add_whose_path_matches_nothing_changes_nothing(patient: dict[str, Any]) -> None:
    """The HL7 adapter sets a child of an optional parent with two adds, one of which selects
    nothing; as in HAPI, that one is a no-op rather than an error."""
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "IMP"},
        "period": {"start": "2026-01-01"},
    }
    result = apply_fhirpath_patch(
        encounter,
        patch(
            op(
                "add",
                "Encounter.where(period.empty())",
                name="period",
                value={"part": [part("end", valueDateTime="2026-01-05")]},
            ),
            op(
                "add",
                "Encounter.period.where(end.empty())",
                name="end",
                value={"valueDateTime": "2026-01-05"},
            ),
        ),
    )
    assert result["period"] == {"start": "2026-01-01", "end": "2026-01-05"}
    untouched = apply_fhirpath_patch(
        patient,
        patch(
            op(
                "add",
                "Patient.identifier.where(system='urn:none')",
                name="use",
                value={"valueCode": "old"},
            )
        ),
    )
    assert untouched == patient
