"""The patient page's test world: St Mary's (America/Chicago, a 42 CFR Part 2 program) discharges
Jane Doe after a suicide attempt with alcohol dependence on Mon 10 Mar 2025 at 2 pm; the plan is
made at once (auto mode), its addiction referral to Prairie Recovery waiting for her Part 2
consent; on day 6 (Sun 16 Mar, 10 pm) she comes to the emergency department: a crisis alert. The
clock then stands at Mon 17 Mar, 9 am. Users: ``cm`` (case manager), ``prairie`` (the partner
the addiction referral waits for), ``ann`` (another partner)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from careplan_helpers import adt
from monitor_helpers import local, visit
from seeds import seed_once, seed_templates
from web_helpers import PASSWORD, web_settings
from workflow_helpers import ManualClock

from fhir_gateway.context import SYSTEM
from fhir_gateway.monitors import MONITOR_FLAGS
from fhir_gateway.privacy import MHCA_SYSTEM
from fhir_gateway.settings import Settings
from fhir_gateway.store import repository as repo
from fhir_gateway.store.db import Database
from fhir_gateway.store.search import match_ids
from fhir_gateway.web import add_user

CHICAGO = "America/Chicago"
PARTNER = "Organization/prairie-recovery"
USERS = {
    "cm": ("case-manager", "Organization/care-coordination"),
    "prairie": ("partner", PARTNER),
    "ann": ("partner", "Organization/springfield-cmhc"),
    "eve": ("ehr", "Organization/clinic"),
}
# The smallest PDF a reader opens, and a PNG header: what a scanner sends.
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def patient_settings(database_url: str, **overrides: Any) -> Settings:
    return web_settings(
        database_url,
        careplan_mode="auto",
        sender_zones={"STMARYS": CHICAGO},
        default_sender_zone=CHICAGO,
        **overrides,
    )


@dataclass
class World:
    database: Database
    clock: ManualClock
    patient_id: str
    crisis_flag: str
    waiting_task: str

    def read(self, ref: str) -> dict[str, Any]:
        res_type, res_id = ref.split("/", 1)
        stored = self.database.read(repo.read, res_type, res_id)
        assert stored is not None, ref
        return stored.content

    def all(self, res_type: str, *params: tuple[str, str]) -> list[dict[str, Any]]:
        def run(session: Any) -> list[dict[str, Any]]:
            ids = match_ids(session, res_type, list(params), caller=SYSTEM)
            return [repo.read(session, res_type, i).content for i in ids]  # type: ignore[union-attr]

        return self.database.read(run)


def seed_highest_risk(database: Database, app: Any) -> World:
    settings = app.state.settings
    seed_once(
        database, ("patient-page users", PASSWORD, tuple(USERS.items())), lambda: _users(database)
    )
    clock = ManualClock(local("20250310140000"))
    seed_templates(database, settings)
    intake = app.state.intake
    diagnoses = (("T14.91", "Suicide attempt"), ("F10.20", "Alcohol dependence"))
    answer = intake.receive_hl7(adt(diagnoses=diagnoses), channel="http")
    assert answer.code == "AA", answer.body
    clock.now = local("20250316220000")
    ed = visit("A04", "E", when="20250316220000", control="ED-1", visit_no="V300")
    assert intake.receive_hl7(ed, channel="http").code == "AA"
    clock.now = local("20250317090000")
    world = World(database, clock, "", "", "")
    world.patient_id = world.all("Patient")[0]["id"]
    world.crisis_flag = world.all("Flag", ("_tag", f"{MONITOR_FLAGS}|crisis"))[0]["id"]
    waiting = [
        t
        for t in world.all("Task", ("owner", PARTNER), ("status", "draft"))
        if (t.get("businessStatus") or {}).get("coding", [{}])[0].get("code") == "awaiting-consent"
    ]
    assert waiting, "the addiction referral waits for consent"
    world.waiting_task = sorted(t["id"] for t in waiting)[0]
    return world


def advance_directive(patient_id: str, representative: str) -> dict[str, Any]:
    """Jane's advance directive (Mental Healthcare Act 2017, s5): written on 10 Jan 2025, in force
    from that day, refusing ECT and naming ``representative`` her nominated representative."""
    scope = "http://terminology.hl7.org/CodeSystem/consentscope"
    role = {"coding": [{"system": MHCA_SYSTEM, "code": "nominated-representative"}]}
    ect = {"coding": [{"system": "http://snomed.info/sct", "code": "23835007"}], "text": "ECT"}
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{"system": scope, "code": "adr"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "42348-3"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "dateTime": "2025-01-10T10:00:00Z",
        "sourceAttachment": {"url": "https://records.example.org/directive.pdf"},
        "provision": {
            "type": "permit",
            "period": {"start": "2025-01-10"},
            "actor": [{"role": role, "reference": {"reference": representative}}],
            "provision": [{"type": "deny", "code": [ect]}],
        },
    }


def _users(database: Database) -> None:
    with database.session() as session:
        for name, (role, org) in USERS.items():
            add_user(session, name, PASSWORD, role, org)  # argon2: most of the seed's time
