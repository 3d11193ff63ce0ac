"""Search values derived from the official R4 expressions: the oracle of the capability checks."""

from __future__ import annotations

from conformance._probes import definition, no_match_value, probe_value

TASK = {
    "resourceType": "Task",
    "id": "t1",
    "meta": {"lastUpdated": "2024-05-01T10:00:00Z", "tag": [{"system": "urn:kit", "code": "run"}]},
    "status": "requested",
    "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
    "for": {"reference": "Patient/p1"},
    "focus": {"reference": "ServiceRequest/s1"},
    "owner": {"reference": "Organization/o1"},
    "identifier": [{"system": "urn:ids", "value": "a,b"}],
    "authoredOn": "2024-03-05T12:00:00Z",
    "executionPeriod": {"start": "2024-03-06T00:00:00Z"},
}


def probe(code: str, resource=TASK, res_type: str = "Task"):  # type: ignore[no-untyped-def]
    param = definition(res_type, code, None)
    assert param is not None, code
    return probe_value(res_type, param, resource)


def test_values_by_parameter_type():
    assert probe("status") == "requested"
    assert probe("code") == "http://hl7.org/fhir/CodeSystem/task-code|fulfill"
    assert probe("owner") == "Organization/o1"
    assert probe("authored-on") == "ge2024-03-05"
    assert probe("period") == "ge2024-03-06"
    assert probe("identifier") == r"urn:ids|a\,b"  # search syntax escaped


def test_resolve_is_read_as_the_reference_type():
    assert probe("patient") == "Patient/p1"  # Task.for.where(resolve() is Patient)
    assert probe("patient", {**TASK, "for": {"reference": "Group/g1"}}) is None


def test_common_parameters_come_from_the_base_resource():
    assert probe("_id") == "t1"
    assert probe("_lastUpdated") == "ge2024-05-01"
    assert probe("_tag") == "urn:kit|run"


def test_absent_elements_give_no_probe():
    assert probe("business-status") is None


def test_no_match_values_name_a_served_target_type():
    param = definition("Task", "focus", None)
    assert no_match_value(param, "r1", served={"Patient"}) == "Patient/nomatch-r1"
    assert no_match_value(param, "r1", served=set()) == "nomatch-r1"
    assert no_match_value(definition("Patient", "birthdate", None), "r1") == "lt1801-01-01"


def test_a_boolean_parameter_gets_no_system_code_probe():
    from conformance._probes import is_boolean

    active, gender = definition("Patient", "active", None), definition("Patient", "gender", None)
    assert active is not None and gender is not None
    assert is_boolean(active) and not is_boolean(gender)
    assert no_match_value(active, "run1") is None  # no value of a boolean matches nothing
    assert no_match_value(gender, "run1") == "urn:kit:none|nomatch-run1"
