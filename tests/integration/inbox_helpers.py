"""The referral context the inbox and referral-page tests add to ``web_helpers.seed_caseload``:
who coordinates Jane Doe's plan (a case manager Practitioner on the plan's CareTeam), why the
housing referral was made (a diagnosis the referral names), and a 42 CFR Part 2 referral for the
same partner; plus API clients of the two partners and of the case manager."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from security_helpers import bearer, get_token, register

from fhir_gateway import privacy
from fhir_gateway.context import SYSTEM
from fhir_gateway.services import resources
from fhir_gateway.store.db import Database

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
HOUSING = {
    "coding": [
        {
            "system": "http://fhir-gateway.org/fhir/CodeSystem/referral-service",
            "code": "housing-support",
        }
    ],
    "text": "Housing support",
}
DIAGNOSIS = "Major depressive disorder, single episode, severe"
ASKED = "Help Jane find a stable place to live within 30 days of discharge."
PARTNER_SCOPES = ["system/*.cruds"]  # the role's ceiling decides


def put(session: Any, doc: dict[str, Any]) -> dict[str, Any]:
    stored = resources.update(session, doc["resourceType"], doc["id"], doc, SYSTEM).stored
    assert stored is not None
    return stored.content


def read(database: Database, reference: str) -> dict[str, Any]:
    res_type, res_id = reference.split("/")
    with database.session(readonly=True) as session:
        return resources.read(session, res_type, res_id, SYSTEM).content


def seed_referral_context(database: Database) -> None:
    """Dana Reyes coordinates Jane's plan; the housing referral (sr1/t1, harbor's) names Jane's
    depression (its words may travel with the referral: both carry PSY) and what is asked.
    Seed after the app exists: its write hooks label what is stored."""
    with database.session() as session:
        put(
            session,
            {
                "resourceType": "Organization",
                "id": "care-coordination",
                "active": True,
                "name": "Care Coordination Team",
                "telecom": [{"system": "phone", "value": "+1-217-555-0100"}],
            },
        )
        put(
            session,
            {
                "resourceType": "Practitioner",
                "id": "dana",
                "name": [{"given": ["Dana"], "family": "Reyes"}],
                "telecom": [
                    {"system": "phone", "value": "+1-217-555-0142"},
                    {"system": "email", "value": "dana.reyes@care.example"},
                ],
            },
        )
        put(
            session,
            {
                "resourceType": "CareTeam",
                "id": "ct1",
                "status": "active",
                "subject": {"reference": "Patient/p1"},
                "participant": [
                    {
                        "role": [{"coding": [{"system": SNOMED, "code": "768730001"}]}],
                        "member": {"reference": "Organization/care-coordination"},
                    },
                    {
                        "role": [{"coding": [{"system": SNOMED, "code": "768730001"}]}],
                        "member": {"reference": "Practitioner/dana"},
                    },
                ],
            },
        )
        put(
            session,
            {
                "resourceType": "Condition",
                "id": "c-mdd",
                "subject": {"reference": "Patient/p1"},
                "code": {"coding": [{"system": ICD10, "code": "F32.2"}], "text": DIAGNOSIS},
            },
        )
        request = read_in(session, "ServiceRequest/sr1")
        put(
            session,
            {
                **request,
                "meta": {"security": [dict(privacy.PSY)]},  # as the engine labels an activity
                "reasonReference": [{"reference": "Condition/c-mdd", "display": DIAGNOSIS}],
                "patientInstruction": ASKED,
            },
        )
        plan = read_in(session, "CarePlan/cp1")
        put(session, {**plan, "careTeam": [{"reference": "CareTeam/ct1"}]})


def seed_part2_referral(database: Database, task_id: str = "t-sud") -> None:
    """A requested referral owned by harbor for Jane's alcohol use disorder: the Condition, the
    ServiceRequest (labelled as the care-plan engine labels a substance-use activity) and the
    Task carry 42 CFR Part 2 labels (an unknown sender counts as a Part 2 program), so harbor
    sees it only under Jane's consent."""
    with database.session() as session:
        put(
            session,
            {
                "resourceType": "Condition",
                "id": "c-aud",
                "subject": {"reference": "Patient/p1"},
                "code": {"coding": [{"system": ICD10, "code": "F10.20"}]},
            },
        )
        put(
            session,
            {
                "resourceType": "ServiceRequest",
                "id": "sr-sud",
                "meta": {"security": privacy.activity_labels({privacy.SUBSTANCE_USE}, part2=True)},
                "status": "active",
                "intent": "order",
                "code": HOUSING,
                "subject": {"reference": "Patient/p1"},
                "reasonReference": [{"reference": "Condition/c-aud"}],
                "requester": {"reference": "Organization/care-coordination"},
            },
        )
        put(
            session,
            {
                "resourceType": "Task",
                "id": task_id,
                "status": "requested",
                "intent": "order",
                "code": {
                    "coding": [
                        {"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}
                    ]
                },
                "focus": {"reference": "ServiceRequest/sr-sud"},
                "for": {"reference": "Patient/p1"},
                "requester": {"reference": "Organization/care-coordination"},
                "owner": {"reference": "Organization/harbor"},
                "restriction": {"period": {"end": "2099-02-28"}},
            },
        )


def read_in(session: Any, reference: str) -> dict[str, Any]:
    res_type, res_id = reference.split("/")
    return dict(resources.read(session, res_type, res_id, SYSTEM).content)


def api_headers(client: TestClient, database: Database) -> dict[str, dict[str, str]]:
    """Bearer headers of harbor's and elsewhere's partner clients and of a case manager's."""
    clients = {
        "harbor": ("partner", "Organization/harbor"),
        "elsewhere": ("partner", "Organization/elsewhere"),
        "cm": ("case-manager", "Organization/care-coordination"),
    }
    return {
        name: bearer(get_token(client, register(database, role, PARTNER_SCOPES, org)))
        for name, (role, org) in clients.items()
    }


def message(task: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Communication",
        "status": "completed",
        "basedOn": [{"reference": task}],
        "payload": [{"contentString": text}],
        **extra,
    }
