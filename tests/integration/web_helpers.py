"""Shared pieces of the web-page tests: a small caseload stored as the gateway, user accounts,
an app with authentication on, and a signed-in TestClient."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from security_helpers import SIGNING_KEY_FILE
from seeds import seed_once

from fhir_gateway.app import create_app
from fhir_gateway.context import SYSTEM
from fhir_gateway.services import resources
from fhir_gateway.settings import Settings
from fhir_gateway.store.db import Database
from fhir_gateway.web import add_user

SERVICE = "http://fhir-gateway.org/fhir/CodeSystem/referral-service"
PASSWORD = "correct horse battery staple"
USERS = {  # name → (role, organization)
    "ann": ("partner", "Organization/harbor"),
    "pat": ("partner", "Organization/elsewhere"),
    "cm": ("case-manager", "Organization/care-coordination"),
    "eve": ("ehr", "Organization/clinic"),
}


def web_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "base_url": None,
        "auth_enabled": True,
        "audit_enabled": False,
        "careplan_seed": False,
        "signing_key_file": SIGNING_KEY_FILE,
        **overrides,
    }
    return Settings(**values)


@contextmanager
def web_client(database: Database, database_url: str, **overrides: Any) -> Iterator[TestClient]:
    app = create_app(web_settings(database_url, **overrides), database=database)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


def _put(session: Any, doc: dict[str, Any]) -> None:
    resources.update(session, doc["resourceType"], doc["id"], doc, SYSTEM)


def seed_caseload(database: Database, *, deadline: str = "2099-01-31") -> None:
    """Two partners offering housing support, patient Jane Doe with an active plan, a goal, a
    referral owned by ``harbor`` and a second one open to any eligible partner; the users."""
    seed_once(database, ("web users", PASSWORD, tuple(USERS.items())), lambda: _add_users(database))
    with database.session() as session:
        for org, name in (("harbor", "Harbor Housing"), ("elsewhere", "Elsewhere Services")):
            _put(session, {"resourceType": "Organization", "id": org, "active": True, "name": name})
            _put(
                session,
                {
                    "resourceType": "HealthcareService",
                    "id": f"{org}-hs",
                    "active": True,
                    "providedBy": {"reference": f"Organization/{org}"},
                    "type": [{"coding": [{"system": SERVICE, "code": "housing-support"}]}],
                },
            )
        _put(
            session,
            {
                "resourceType": "Patient",
                "id": "p1",
                "name": [{"given": ["Jane"], "family": "Doe"}],
                "birthDate": "1980-02-03",
                "gender": "female",
                "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-SECRET-42"}],
                "telecom": [{"system": "phone", "value": "555-0100"}],
            },
        )
        _put(
            session,
            {
                "resourceType": "Goal",
                "id": "g1",
                "lifecycleStatus": "active",
                "description": {"text": "Stable housing within 30 days"},
                "subject": {"reference": "Patient/p1"},
            },
        )
        for sr, task, owner in (("sr1", "t1", "Organization/harbor"), ("sr2", "t2", None)):
            _put(
                session,
                {
                    "resourceType": "ServiceRequest",
                    "id": sr,
                    "status": "active",
                    "intent": "order",
                    "code": {
                        "coding": [{"system": SERVICE, "code": "housing-support"}],
                        "text": "Housing support",
                    },
                    "subject": {"reference": "Patient/p1"},
                    "requester": {"reference": "Organization/care-coordination"},
                },
            )
            doc: dict[str, Any] = {
                "resourceType": "Task",
                "id": task,
                "status": "requested",
                "intent": "order",
                "code": {
                    "coding": [
                        {"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}
                    ]
                },
                "focus": {"reference": f"ServiceRequest/{sr}"},
                "for": {"reference": "Patient/p1"},
                "requester": {"reference": "Organization/care-coordination"},
                "authoredOn": "2025-03-10T12:00:00Z",
                "restriction": {"period": {"end": deadline}},
            }
            if owner:
                doc["owner"] = {"reference": owner}
            _put(session, doc)
        _put(
            session,
            {
                "resourceType": "CarePlan",
                "id": "cp1",
                "status": "active",
                "intent": "plan",
                "title": "Aftercare plan",
                "subject": {"reference": "Patient/p1"},
                "period": {"start": "2025-03-10"},
                "goal": [{"reference": "Goal/g1"}],
                "activity": [
                    {"reference": {"reference": "ServiceRequest/sr1"}},
                    {"reference": {"reference": "ServiceRequest/sr2"}},
                ],
            },
        )


def _add_users(database: Database) -> None:
    with database.session() as session:
        for name, (role, org) in USERS.items():
            add_user(session, name, PASSWORD, role, org)  # argon2: most of the seed's time


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert found, "the page has no CSRF token"
    return found.group(1)


def version_of(page: str, task_id: str) -> str:
    found = re.search(
        rf'action="/web/inbox/{task_id}/\w+"[^>]*>\s*<input[^>]*>\s*<input type="hidden" name="version" value="(\d+)"',
        page,
    )
    assert found, f"no form for {task_id}"
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    token = csrf(client.get("/web/login").text)
    return client.post(
        "/web/login", data={"username": username, "password": password, "csrf_token": token}
    )
