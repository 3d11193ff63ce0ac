"""Shared pieces of the safety-plan tests: a discharged patient with an active discharge plan, a
CareTeam holding two family members (one the patient consented to share with), an open
safety-plan review Task, the web users; and a completed response in the patient's own words."""

from __future__ import annotations

from typing import Any

from seeds import seed_once
from web_helpers import PASSWORD, USERS, _add_users

from fhir_gateway import assessments
from fhir_gateway.context import SYSTEM
from fhir_gateway.services import resources
from fhir_gateway.store.db import Database

__all__ = ["PATIENT", "seed_patient", "response", "SERVICE", "QUESTIONNAIRE"]

SERVICE = "http://fhir-gateway.org/fhir/CodeSystem/referral-service"
QUESTIONNAIRE = "http://fhir-gateway.org/fhir/Questionnaire/safety-plan"
PATIENT = "Patient/sp1"


def _put(session: Any, doc: dict[str, Any]) -> None:
    resources.update(session, doc["resourceType"], doc["id"], doc, SYSTEM)


def _people() -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "Patient",
            "id": "sp1",
            "name": [{"given": ["Maria"], "family": "Alvarez"}],
            "birthDate": "1991-07-14",
            "telecom": [{"system": "phone", "value": "217-555-0143"}],
            "address": [{"city": "Springfield", "state": "IL", "country": "US"}],
        },
        *(
            {
                "resourceType": "RelatedPerson",
                "id": rid,
                "patient": {"reference": PATIENT},
                "name": [{"given": [given], "family": "Alvarez"}],
                "relationship": [{"text": relation}],
                "telecom": [{"system": "phone", "value": phone}],
            }
            for rid, given, relation, phone in (
                ("sp-sister", "Lucia", "Sister", "217-555-0190"),
                ("sp-uncle", "Jorge", "Uncle", "217-555-0122"),
            )
        ),
    ]


def _plan() -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "CareTeam",
            "id": "sp-team",
            "status": "active",
            "subject": {"reference": PATIENT},
            "participant": [
                {"member": {"reference": "RelatedPerson/sp-sister"}},
                {"member": {"reference": "RelatedPerson/sp-uncle"}},
            ],
        },
        {
            "resourceType": "CarePlan",
            "id": "sp-discharge",
            "status": "active",
            "intent": "plan",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/us/core/CodeSystem/careplan-category",
                            "code": "assess-plan",
                        }
                    ]
                }
            ],
            "title": "Aftercare plan after discharge",
            "subject": {"reference": PATIENT},
            "careTeam": [{"reference": "CareTeam/sp-team"}],
            "period": {"start": "2026-11-30"},
            "meta": {
                "security": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}
                ]
            },
        },
        {
            "resourceType": "ServiceRequest",
            "id": "sp-sr",
            "status": "active",
            "intent": "order",
            "code": {"coding": [{"system": SERVICE, "code": "safety-crisis-plan"}]},
            "subject": {"reference": PATIENT},
        },
        {
            "resourceType": "Task",
            "id": "sp-review",
            "status": "requested",
            "intent": "order",
            "code": {
                "coding": [
                    {"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}
                ]
            },
            "focus": {"reference": "ServiceRequest/sp-sr"},
            "for": {"reference": PATIENT},
            "owner": {"reference": "Organization/harbor"},  # the partner treating the patient
            "authoredOn": "2026-11-30T15:00:00Z",
        },
        {
            "resourceType": "Consent",
            "id": "sp-consent",
            "status": "active",
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "patient-privacy",
                    }
                ]
            },
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": PATIENT},
            "dateTime": "2026-11-30",
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
                        "reference": {"reference": "RelatedPerson/sp-sister"},
                    }
                ],
                "purpose": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "COC"}
                ],
            },
        },
    ]


def seed_patient(database: Database) -> None:
    seed_once(database, ("web users", PASSWORD, tuple(USERS.items())), lambda: _add_users(database))

    def store() -> None:
        with database.session() as session:
            # stored as the instruments' seed stores it: their validation of every response
            # asks for the stored Questionnaire
            for doc in (assessments.shipped_questionnaire(), *_people(), *_plan()):
                _put(session, doc)

    seed_once(database, ("safety plan patient", 3), store)


def response(
    *, warning: str = "I stop answering my phone", authored: str = "2026-12-01T10:00:00Z"
) -> dict[str, Any]:
    """A completed safety plan in the patient's own words."""

    def texts(link: str, *values: str) -> dict[str, Any]:
        return {"linkId": link, "answer": [{"valueString": v} for v in values]}

    def person(link: str, name: str, phone: str) -> dict[str, Any]:
        return {
            "linkId": link,
            "item": [texts(f"{link}.name", name), texts(f"{link}.phone", phone)],
        }

    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": QUESTIONNAIRE,
        "status": "completed",
        "subject": {"reference": PATIENT},
        "authored": authored,
        "item": [
            {
                "linkId": "warning-signs",
                "item": [texts("warning-signs.sign", warning, "Lying awake after 3 am")],
            },
            {"linkId": "coping", "item": [texts("coping.strategy", "Walk the dog along the lake")]},
            {
                "linkId": "distraction",
                "item": [
                    person("distraction.person", "Ana from choir", "217-555-0177"),
                    texts("distraction.place", "The public library"),
                ],
            },
            {"linkId": "help", "item": [person("help.person", "Lucia (sister)", "217-555-0190")]},
            {
                "linkId": "professionals",
                "item": [
                    person("professionals.contact", "Dr. Okafor, Springfield CMHC", "217-555-0100")
                ],
            },
            {
                "linkId": "environment",
                "item": [texts("environment.step", "Lucia keeps my sleeping pills")],
            },
            {"linkId": "reasons", "item": [texts("reasons.most-important", "My daughter Sofia")]},
        ],
    }
