"""The declarative profile rules and their engine."""

from __future__ import annotations

import json

from conformance.profiles import RULES_PATH, RuleEngine, default_engine

SDOH_TASK = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/SDOHCC-TaskForReferralManagement"
)
US_CORE_PATIENT = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"
NOTIFICATION = "http://hl7.org/fhir/us/davinci-alerts/StructureDefinition/notifications-bundle"


def referral_task(**changes):  # type: ignore[no-untyped-def]
    task = {
        "resourceType": "Task",
        "id": "t1",
        "meta": {"profile": [SDOH_TASK]},
        "status": "requested",
        "intent": "order",
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]
        },
        "focus": {"reference": "ServiceRequest/s1"},
        "for": {"reference": "Patient/p1"},
        "authoredOn": "2024-03-05T12:00:00Z",
        "requester": {"reference": "Practitioner/dr"},
    }
    return {**task, **changes}


def ids(violations):  # type: ignore[no-untyped-def]
    return sorted((v.rule_set, v.rule_id, v.severity) for v in violations)


def test_every_rule_set_and_expression_loads_and_compiles():
    engine = RuleEngine.from_file()
    data = json.loads(RULES_PATH.read_text())
    assert len(engine.rule_sets) == len(data["ruleSets"]) >= 9
    names = {s.name for s in engine.rule_sets}
    assert {
        "US Core Patient",
        "US Core Encounter",
        "US Core Condition",
        "US Core CarePlan",
        "US Core Goal",
        "US Core ServiceRequest",
        "Gravity SDOH ServiceRequest",
        "Gravity SDOH Task for referral management",
        "Da Vinci notification Bundle",
    } <= names


def test_a_conforming_referral_task_has_no_violations():
    assert default_engine().violations(referral_task()) == []


def test_a_status_outside_the_sdoh_subset_is_an_error():
    found = default_engine().violations(referral_task(status="received"))
    assert ids(found) == [("Gravity SDOH Task for referral management", "status-binding", "error")]
    assert "Task/t1" in str(found[0])


def test_status_reason_is_only_a_warning_and_only_for_the_states_that_need_it():
    rejected = default_engine().violations(referral_task(status="rejected"))
    assert ids(rejected) == [
        ("Gravity SDOH Task for referral management", "status-reason", "warning")
    ]
    assert default_engine().errors(referral_task(status="rejected")) == []
    explained = referral_task(status="rejected", statusReason={"text": "no capacity"})
    assert default_engine().violations(explained) == []


def test_rules_apply_only_to_resources_that_claim_the_profile_or_that_the_gateway_wrote():
    bare = {"resourceType": "Patient", "gender": "robot"}
    assert default_engine().violations(bare) == []  # a client's own Patient: not ours to judge
    claimed = {**bare, "meta": {"profile": [US_CORE_PATIENT]}}
    assert {v.rule_id for v in default_engine().violations(claimed)} == {
        "identifier",
        "name",
        "gender-binding",
    }
    emitted = {**bare, "meta": {"source": "urn:fhir-gateway:intake"}}
    assert {v.rule_id for v in default_engine().violations(emitted)} == {
        "identifier",
        "name",
        "gender-binding",
    }


def test_required_binding_checks_the_system_of_codeable_concepts():
    condition = {
        "resourceType": "Condition",
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition"]},
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "encounter-diagnosis",
                    }
                ]
            }
        ],
        "code": {"text": "depression"},
        "subject": {"reference": "Patient/p1"},
        "clinicalStatus": {"coding": [{"system": "http://snomed.info/sct", "code": "55561003"}]},
    }
    assert ids(default_engine().violations(condition)) == [
        ("US Core Condition", "clinical-status-binding", "error")
    ]


def notification_bundle(**changes):  # type: ignore[no-untyped-def]
    bundle = {
        "resourceType": "Bundle",
        "id": "n1",
        "meta": {"profile": [NOTIFICATION]},
        "identifier": {
            "system": "urn:ietf:rfc:3986",
            "value": "urn:uuid:5e0b2c4c-0000-4000-8000-000000000001",
        },
        "type": "message",
        "timestamp": "2024-03-05T12:00:00Z",
        "entry": [
            {
                "fullUrl": "urn:uuid:1",
                "resource": {
                    "resourceType": "MessageHeader",
                    "eventCoding": {
                        "system": "http://hl7.org/fhir/us/davinci-alerts/CodeSystem/notification-event",
                        "code": "notify-discharge",
                    },
                    "sender": {"reference": "Organization/h"},
                    "source": {"endpoint": "https://hospital.example/fhir"},
                    "focus": [{"reference": "Encounter/e1"}],
                },
            },
            {
                "fullUrl": "https://hospital.example/fhir/Encounter/e1",
                "resource": {"resourceType": "Encounter", "id": "e1"},
            },
        ],
    }
    return {**bundle, **changes}


def test_a_notification_bundle_must_carry_its_focus():
    assert default_engine().violations(notification_bundle()) == []
    broken = notification_bundle()
    broken["entry"] = broken["entry"][:1]
    assert ids(default_engine().violations(broken)) == [
        ("Da Vinci notification Bundle", "focus-in-bundle", "error")
    ]


def test_bundle_entries_are_checked_with_their_own_rules():
    searchset = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": referral_task(status="ready")}],
    }
    found = default_engine().violations(searchset)
    assert [v.rule_id for v in found] == ["status-binding"]
    assert "entry[0] Task/t1" in found[0].location


def test_a_rule_that_cannot_run_is_reported_not_raised(tmp_path):
    rules = {
        "ruleSets": [
            {
                "name": "odd",
                "resourceType": "Patient",
                "profiles": ["urn:p"],
                "rules": [{"id": "bad", "expect": "name.family.substring('x')", "message": "m"}],
            }
        ]
    }
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules))
    found = RuleEngine.from_file(path).violations(
        {"resourceType": "Patient", "meta": {"profile": ["urn:p"]}, "name": [{"family": "A"}]}
    )
    assert [(v.rule_id, v.severity) for v in found] == [("bad", "error")]
    assert "could not be evaluated" in found[0].message
