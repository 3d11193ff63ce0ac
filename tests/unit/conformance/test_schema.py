"""The official R4 JSON schema, as the kit and the emitted-resource check use it."""

from __future__ import annotations

import pytest

from conformance.schema import SCHEMA_PATH, schema_issues, validate_resource

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "meta": {"versionId": "1", "lastUpdated": "2024-01-01T00:00:00Z"},
    "identifier": [{"system": "urn:mrn", "value": "1"}],
    "name": [{"family": "Okafor", "given": ["Chi"]}],
    "gender": "female",
    "birthDate": "1980-05-17",
}


def test_the_schema_ships_with_the_package():
    assert SCHEMA_PATH.is_file()
    assert SCHEMA_PATH.stat().st_size > 3_000_000


def test_a_valid_resource_has_no_issues():
    assert schema_issues(PATIENT) == []
    validate_resource(PATIENT)


def test_issues_name_the_element_path():
    issues = schema_issues({**PATIENT, "gender": "robot", "name": [{"given": "Chi"}]})
    assert [i.path for i in issues] == ["Patient.gender", "Patient.name[0].given"]
    assert "robot" in issues[0].message


def test_unknown_elements_and_types_are_reported():
    assert "colour" in str(schema_issues({**PATIENT, "colour": "blue"}))
    assert schema_issues({"resourceType": "Spaceship"})[0].path == "resourceType"
    with pytest.raises(ValueError, match="Patient.birthDate"):
        validate_resource({**PATIENT, "birthDate": "17 May 1980"})


def test_bundle_entries_and_contained_resources_are_validated_by_their_own_type():
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": PATIENT},
            {"resource": {"resourceType": "Patient", "gender": 5}},
            {"resource": {"resourceType": "Nope"}},
        ],
    }
    issues = schema_issues(bundle)
    assert [i.path for i in issues] == [
        "Bundle.entry[1].resource.gender",
        "Bundle.entry[2].resource",
    ]
    contained = {
        "resourceType": "Patient",
        "contained": [{"resourceType": "Organization", "name": 3}],
    }
    assert [i.path for i in schema_issues(contained)] == ["Patient.contained[0].name"]


def test_each_entry_is_checked_against_its_own_type_not_the_schemas_one_of():
    """The schema's own ``ResourceList`` is a oneOf over all 146 types (~0.5 s for a searchset of
    twenty): each entry is checked against the definition its resourceType names instead, so an
    unknown type is named as such, and a bad entry's issues are its own type's."""
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": PATIENT}] * 20
        + [{"resource": {"resourceType": "Nonesuch"}}, {"resource": {**PATIENT, "active": 1}}],
    }
    issues = [str(i) for i in schema_issues(bundle)]
    assert issues == [
        "Bundle.entry[20].resource: 'Nonesuch' is not an R4 resource type",
        "Bundle.entry[21].resource.active: 1 is not of type 'boolean'",
    ]
