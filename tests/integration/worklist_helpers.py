"""Shared pieces of the worklist tests: a gateway in review mode with the shipped templates and
partner directory, sign-in on, case managers and a partner as users, and discharges sent to it."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from careplan_helpers import ZONE, adt
from fastapi.testclient import TestClient
from seeds import seed_once, seed_templates
from web_helpers import PASSWORD, csrf, web_settings

from fhir_gateway.app import create_app
from fhir_gateway.context import SYSTEM
from fhir_gateway.store import repository as repo
from fhir_gateway.store.db import Database
from fhir_gateway.store.search import match_ids
from fhir_gateway.web import add_user
from fhir_gateway.web._caseload import ensure_practitioner

USERS = {  # name → (role, organization, shown name)
    "carla": ("case-manager", "Organization/care-coordination", "Carla Mendes"),
    "dev": ("case-manager", "Organization/care-coordination", "Dev Patel"),
    "cmhc": ("partner", "Organization/springfield-cmhc", None),
    "eve": ("ehr", "Organization/lincoln-therapy", None),  # a clinic's clinician: reads only
}


@dataclass
class Desk:
    """The gateway and a browser-like client of its web pages."""

    database: Database
    client: TestClient
    app: Any

    def discharge(self, **fields: Any) -> dict[str, Any]:
        """Send an A03; the draft plan it made."""
        answer = self.app.state.intake.receive_hl7(adt(**fields), channel="http")
        assert answer.code == "AA", answer.body
        mrn = fields.get("mrn", "MRN100")
        plans = [p for p in self.all("CarePlan") if p["status"] == "draft"]
        mine = [p for p in plans if self._mrn_of(p) == mrn]
        assert len(mine) == 1, [p["id"] for p in plans]
        return mine[0]

    def _mrn_of(self, plan: dict[str, Any]) -> str:
        patient = self.read(plan["subject"]["reference"])
        return str(patient["identifier"][0]["value"])

    def all(self, res_type: str, *params: tuple[str, str]) -> list[dict[str, Any]]:
        def run(session: Any) -> list[dict[str, Any]]:
            ids = match_ids(session, res_type, list(params), caller=SYSTEM)
            return [repo.read(session, res_type, i).content for i in ids]  # type: ignore[union-attr]

        return self.database.read(run)

    def read(self, ref: str) -> dict[str, Any]:
        res_type, res_id = ref.split("/", 1)
        stored = self.database.read(repo.read, res_type, res_id)
        assert stored is not None, ref
        return stored.content

    def tasks_of(self, plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The plan's referral Tasks by service name."""
        out = {}
        for activity in self.read(f"CarePlan/{plan['id']}")["activity"]:
            request = self.read(activity["reference"]["reference"])
            for task in self.all("Task", ("focus", f"ServiceRequest/{request['id']}")):
                out[request["code"]["text"]] = task
        return out

    def sign_in(self, username: str) -> None:
        self.client.cookies.clear()
        token = csrf(self.client.get("/web/login").text)
        answer = self.client.post(
            "/web/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
        )
        assert answer.status_code == 303, answer.text

    def post(self, path: str, page: str, **data: Any) -> Any:
        """Submit a form of ``page`` (its CSRF token) to ``path``."""
        return self.client.post(path, data={"csrf_token": csrf(page), **data})


def plan_version(page: str) -> str:
    found = re.search(
        r'action="/web/plans/[^/"]+/approve">\s*<input[^>]*>\s*<input type="hidden" name="version" value="(\d+)"',
        page,
    )
    assert found, "no approve form"
    return found.group(1)


def seed_users(database: Database) -> None:
    """The web users (and the case managers' Practitioners), stored the slow way once per process."""
    seed_once(
        database, ("worklist users", PASSWORD, tuple(USERS.items())), lambda: _users(database)
    )


def _users(database: Database) -> None:
    with database.session() as session:
        for name, (role, org, shown) in USERS.items():
            add_user(session, name, PASSWORD, role, org)
            if role == "case-manager":
                ensure_practitioner(session, SYSTEM, name, shown)


@contextmanager
def desk_for(database: Database, database_url: str, **overrides: Any) -> Iterator[Desk]:
    settings = web_settings(
        database_url,
        careplan_mode="review",
        sender_zones={"STMARYS": ZONE},
        default_sender_zone=ZONE,
        **overrides,
    )
    app = create_app(settings, database=database)
    seed_users(database)
    seed_templates(database, settings)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield Desk(database, client, app)


# -- a caseload built directly (bulk-loaded, shaped as the engine and the monitors shape it) -------

NOW = "2026-11-25T18:00:00+00:00"  # Wed 25 Nov 2026, noon in Chicago
MONITOR_AUTHOR = "Organization/care-coordination"


def organization(org_id: str, name: str, phone: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "Organization",
        "id": org_id,
        "active": True,
        "name": name,
    }
    if phone:
        doc["telecom"] = [{"system": "phone", "value": phone}]
    return doc


def patient(
    pid: str, given: str, family: str, born: str = "1980-02-03", mrn: str = ""
) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"given": [given], "family": family}],
        "birthDate": born,
        "identifier": [
            {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                    ]
                },
                "system": "urn:oid:1.2.3",
                "value": mrn or f"MRN-{pid}",
            }
        ],
    }


def referral(
    task_id: str,
    pid: str,
    *,
    status: str = "requested",
    owner: str | None = None,
    deadline: str | None = None,
    service: str = "Housing support",
    request_status: str = "active",
) -> list[dict[str, Any]]:
    """A ServiceRequest and its referral Task."""
    request = {
        "resourceType": "ServiceRequest",
        "id": f"sr-{task_id}",
        "status": request_status,
        "intent": "order",
        "code": {"text": service},
        "subject": {"reference": f"Patient/{pid}"},
    }
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": task_id,
        "status": status,
        "intent": "order",
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]
        },
        "focus": {"reference": f"ServiceRequest/sr-{task_id}"},
        "for": {"reference": f"Patient/{pid}"},
        "requester": {"reference": MONITOR_AUTHOR},
        "authoredOn": "2026-11-01T12:00:00Z",
    }
    if owner:
        task["owner"] = {"reference": owner}
    if deadline:
        task["restriction"] = {"period": {"end": deadline}}
    return [request, task]


def monitor_flag(
    flag_id: str, codes: list[str], pid: str, about: str, text: str, start: str
) -> dict[str, Any]:
    """A Flag as the monitors raise it (their own builder), started at ``start``."""
    from fhir_gateway.monitors._alerts import Alert, flag

    alert = Alert(
        codes=codes,
        patient=f"Patient/{pid}",
        text=text,
        priority="PM",
        category="admin",
        details=[about],
    )
    return {**flag(flag_id, alert, MONITOR_AUTHOR), "period": {"start": start}}


def draft_plan(
    plan_id: str, pid: str, created: str, title: str = "Aftercare plan"
) -> dict[str, Any]:
    return {
        "resourceType": "CarePlan",
        "id": plan_id,
        "status": "draft",
        "intent": "plan",
        "title": title,
        "subject": {"reference": f"Patient/{pid}"},
        "created": created,
    }


def care_team(team_id: str, pid: str, practitioner: str) -> dict[str, Any]:
    from fhir_gateway.web._caseload import CASE_MANAGER_ROLE

    return {
        "resourceType": "CareTeam",
        "id": team_id,
        "status": "active",
        "subject": {"reference": f"Patient/{pid}"},
        "participant": [{"role": [CASE_MANAGER_ROLE], "member": {"reference": practitioner}}],
    }


def bulk_load(database: Database, docs: list[dict[str, Any]]) -> None:
    from fhir_gateway.store import bulk

    with database.session() as session:
        bulk.load(session, docs)


def row_kinds(page: str) -> list[str]:
    return re.findall(r'<tr class="kind-([a-z-]+)">', page)


def row_patients(page: str) -> list[str]:
    return re.findall(
        r'<tr class="kind-[a-z-]+">\s*<td>.*?</td>\s*<td><a href="/web/patients/([^"]+)"',
        page,
        flags=re.S,
    )


def visible_text(page: str) -> str:
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


SPANISH = (("F32.2", "Major depressive disorder, severe"), ("Z56.0", "Unemployment"))


def speak_spanish(database: Database, service_id: str = "capital-ips-employment") -> None:
    """The partner directory changes: the employment service now works in Spanish too."""
    from fhir_gateway.services import resources

    with database.session() as session:
        service = dict(repo.read(session, "HealthcareService", service_id).content)  # type: ignore[union-attr]
        service["communication"] = [
            {"coding": [{"system": "urn:ietf:bcp:47", "code": "en"}]},
            {"coding": [{"system": "urn:ietf:bcp:47", "code": "es"}]},
        ]
        resources.update(session, "HealthcareService", service_id, service, SYSTEM)


def discharge(
    pid: str,
    ended: str,
    *,
    seen: str | None = None,
    disposition: str | None = None,
) -> list[dict[str, Any]]:
    """A psychiatric stay that ``ended`` (the engine's plan for it), and an outpatient psychiatry
    visit on ``seen`` if given; ``disposition``: a v2 0112 discharge disposition code."""
    stay: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": f"stay-{pid}",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": ended[:10], "end": ended},
    }
    if disposition:
        system = "http://terminology.hl7.org/CodeSystem/v2-0112"
        stay["hospitalization"] = {
            "dischargeDisposition": {"coding": [{"system": system, "code": disposition}]}
        }
    plan = {
        "resourceType": "CarePlan",
        "id": f"aftercare-{pid}",
        "identifier": [{"system": "urn:fhir-gateway:careplan", "value": f"stay-{pid}"}],
        "status": "active",
        "intent": "plan",
        "title": "Aftercare plan",
        "subject": {"reference": f"Patient/{pid}"},
        "encounter": {"reference": f"Encounter/stay-{pid}"},
        "period": {"start": ended[:10]},
    }
    docs = [stay, plan]
    if seen:
        docs.append(
            {
                "resourceType": "Encounter",
                "id": f"visit-{pid}",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "serviceType": {"coding": [{"code": "PSY", "display": "Psychiatry"}]},
                "subject": {"reference": f"Patient/{pid}"},
                "period": {"start": seen, "end": seen},
            }
        )
    return docs
