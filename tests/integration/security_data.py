"""The data of the authorization tests: two patients (one with a substance-use diagnosis), two
partner organisations with their services, referrals owned, open and in draft, and the clients
of every role."""

from __future__ import annotations

from typing import Any

from fhir_gateway.context import SYSTEM
from fhir_gateway.services import resources as svc
from fhir_gateway.store.db import Database

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SERVICE = "http://fhir-gateway.org/fhir/CodeSystem/referral-service"
FULFILL = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}

PARTNER_SCOPES = [
    "system/Task.rus",
    "system/ServiceRequest.rs",
    "system/Patient.rs",
    "system/Organization.rs",
    "system/HealthcareService.rs",
]
CLIENTS: dict[str, tuple[str, list[str], str]] = {
    "admin": ("admin", ["system/*.cruds"], "Organization/care-coordination"),
    "case-manager": ("case-manager", ["system/*.cruds"], "Organization/care-coordination"),
    "ehr": ("ehr", ["system/*.rs"], "Organization/ehr-clinic"),
    "hospital": (
        "hospital",
        [
            "system/Patient.crus",
            "system/Encounter.crus",
            "system/Condition.crus",
            "system/Observation.crus",
        ],
        "Organization/st-marys",
    ),
    "partner-hope": ("partner", PARTNER_SCOPES, "Organization/hope"),
    "partner-prairie": ("partner", PARTNER_SCOPES, "Organization/prairie"),
}


def _condition(res_id: str, patient: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": res_id,
        "subject": {"reference": f"Patient/{patient}"},
        "code": {"coding": [{"system": ICD10, "code": code}]},
    }


def _request(res_id: str, patient: str, service: str, reason: str) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": res_id,
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient}"},
        "code": {"coding": [{"system": SERVICE, "code": service}]},
        "reasonReference": [{"reference": f"Condition/{reason}"}],
    }


def _task(
    res_id: str, request: str, patient: str, status: str, owner: str | None
) -> dict[str, Any]:
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": res_id,
        "status": status,
        "intent": "order",
        "code": FULFILL,
        "focus": {"reference": f"ServiceRequest/{request}"},
        "for": {"reference": f"Patient/{patient}"},
        "requester": {"reference": "Organization/care-coordination"},
        "authoredOn": "2026-01-05T10:00:00Z",
    }
    if owner:
        task["owner"] = {"reference": owner}
    return task


def _service(res_id: str, organization: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "HealthcareService",
        "id": res_id,
        "active": True,
        "providedBy": {"reference": organization},
        "type": [{"coding": [{"system": SERVICE, "code": code}]}],
        "communication": [
            {"coding": [{"system": "urn:ietf:bcp:47", "code": c}]} for c in ("en", "es")
        ],
    }


RESOURCES: list[dict[str, Any]] = [
    {"resourceType": "Organization", "id": "hope", "name": "Hope Housing", "active": True},
    {"resourceType": "Organization", "id": "prairie", "name": "Prairie Recovery", "active": True},
    _service("hs-hope", "Organization/hope", "housing-support"),
    _service("hs-prairie", "Organization/prairie", "addiction-treatment"),
    {
        "resourceType": "Patient",
        "id": "pat-psy",
        "name": [{"family": "Moss", "given": ["Ada"]}],
        "birthDate": "1980-02-03",
        "gender": "female",
        "telecom": [{"system": "phone", "value": "555-0101"}],
        "identifier": [{"system": "urn:mrn", "value": "MRN-1"}],
        "communication": [
            {
                "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es"}]},
                "preferred": True,
            }
        ],
        "address": [{"city": "Springfield", "state": "IL"}],
        "maritalStatus": {"text": "divorced"},
    },
    {
        "resourceType": "Patient",
        "id": "pat-sud",
        "name": [{"family": "Reed", "given": ["Bo"]}],
        "birthDate": "1975-07-08",
        "identifier": [{"system": "urn:mrn", "value": "MRN-2"}],
    },
    _condition("c-psy", "pat-psy", "F32.2"),
    _condition("c-sud", "pat-sud", "F10.20"),
    {
        "resourceType": "Encounter",
        "id": "e-sud",
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": "Patient/pat-sud"},
        "diagnosis": [{"condition": {"reference": "Condition/c-sud"}}],
    },
    {
        "resourceType": "Observation",
        "id": "o-1",
        "status": "final",
        "code": {"text": "weight"},
        "subject": {"reference": "Patient/pat-sud"},
        "encounter": {"reference": "Encounter/e-sud"},
    },
    {
        "resourceType": "CarePlan",
        "id": "cp-psy",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "Patient/pat-psy"},
        "addresses": [{"reference": "Condition/c-psy"}],
    },
    _request("sr-housing", "pat-psy", "housing-support", "c-psy"),
    _request("sr-sud", "pat-sud", "addiction-treatment", "c-sud"),
    _task("t-hope", "sr-housing", "pat-psy", "requested", "Organization/hope"),
    _task("t-hope-draft", "sr-housing", "pat-psy", "draft", "Organization/hope"),
    _task("t-open-housing", "sr-housing", "pat-psy", "requested", None),
    _task("t-prairie", "sr-sud", "pat-sud", "requested", "Organization/prairie"),
    _task("t-open-sud", "sr-sud", "pat-sud", "requested", None),
]
DATASET = frozenset(f"{r['resourceType']}/{r['id']}" for r in RESOURCES)
LABELLED = frozenset(
    {
        "Condition/c-sud",
        "Encounter/e-sud",
        "ServiceRequest/sr-sud",
        "Task/t-prairie",
        "Task/t-open-sud",
    }
)


def seed(database: Database) -> None:
    def write(session: Any) -> None:
        for doc in RESOURCES:
            svc.update(session, doc["resourceType"], doc["id"], dict(doc), SYSTEM)

    database.write(write)


def consent(
    patient: str, organization: str, *, status: str = "active", **provision: Any
) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "status": status,
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient}"},
        "policy": [{"uri": "https://www.ecfr.gov/current/title-42/chapter-I/subchapter-A/part-2"}],
        "provision": {
            "type": "permit",
            "actor": [
                {
                    "role": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "IRCP",
                            }
                        ]
                    },
                    "reference": {"reference": organization},
                }
            ],
            **provision,
        },
    }
