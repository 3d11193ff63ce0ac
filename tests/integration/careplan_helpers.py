"""Shared pieces of the care-plan tests: HL7 v2 discharges built field by field, a gateway (app,
intake, seeded templates and directory) in review or auto mode, and readers for what it stored."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from seeds import seed_templates

from fhir_gateway.app import create_app
from fhir_gateway.context import SYSTEM
from fhir_gateway.services.ingest import Answer, Intake
from fhir_gateway.settings import Settings
from fhir_gateway.store import repository as repo
from fhir_gateway.store.db import Database
from fhir_gateway.store.search import match_ids

ZONE = "America/Chicago"
PLAN_TYPES = ("CarePlan", "Goal", "ServiceRequest", "Task", "CareTeam")


def segment(name: str, fields: dict[int, str]) -> str:
    width = max(fields) if fields else 0
    return "|".join([name, *(fields.get(i, "") for i in range(1, width + 1))])


def adt(
    event: str = "A03",
    *,
    control: str = "MSG-1",
    mrn: str = "MRN100",
    visit: str = "V100",
    diagnoses: tuple[tuple[str, str], ...] = (("F32.2", "Major depressive disorder, severe"),),
    ranks: tuple[str, ...] | None = None,
    service: str = "PSY",
    admitted: str = "20250301090000",
    discharged: str = "20250310140000",
    disposition: str = "01",
    deceased: str = "",
    next_of_kin: bool = True,
    address: str = "12 Main St^^Springfield^IL^62701^USA^H",
    language: str = "",
    family: str = "Doe",
    sent: str = "",
) -> bytes:
    """An ADT message from St Mary's (zone America/Chicago) for one inpatient stay."""
    sent = sent or discharged or admitted  # MSH-7: a later message must be sent later
    msh = f"MSH|^~\\&|EPIC|STMARYS^1.2.3^ISO|GW|GW|{sent}||ADT^{event}^ADT_A03|{control}|P|2.5.1"
    evn = segment("EVN", {1: event, 2: sent})
    pid = segment(
        "PID",
        {
            1: "1",
            3: f"{mrn}^^^STMARYS&1.2.3&ISO^MR",
            5: f"{family}^Jane^Q",
            7: "19850214",
            8: "F",
            11: address,
            15: language,
            30: deceased,
        },
    )
    segs = [msh, evn, pid]
    if next_of_kin:
        segs.append(
            segment(
                "NK1",
                {1: "1", 2: f"{family}^John", 3: "SPO^Spouse^HL70063", 5: "^PRN^PH^^^217^5559876"},
            )
        )
    segs.append(
        segment(
            "PV1",
            {
                1: "1",
                2: "I",
                3: f"{service}^301^A^STMARYS",
                7: "1234^Smith^Alan^^^Dr^MD",
                10: service,
                19: f"{visit}^^^STMARYS^VN",
                36: disposition if discharged else "",
                44: admitted,
                45: discharged,
            },
        )
    )
    for i, (code, text) in enumerate(diagnoses, start=1):
        rank = ranks[i - 1] if ranks else ("1" if i == 1 else "")
        segs.append(segment("DG1", {1: str(i), 3: f"{code}^{text}^I10", 6: "F", 15: rank}))
    return "\r".join(segs).encode()


@dataclass
class Gateway:
    database: Database
    settings: Settings
    intake: Intake
    client: TestClient

    def send(self, raw: bytes) -> Answer:
        answer = self.intake.receive_hl7(raw, channel="http")
        assert answer.code == "AA", answer.body
        return answer

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

    def plans(self) -> list[dict[str, Any]]:
        return self.all("CarePlan")

    def plan(self) -> dict[str, Any]:
        plans = [p for p in self.plans() if p["status"] not in ("revoked",)]
        assert len(plans) == 1, [p["status"] for p in self.plans()]
        return plans[0]

    def requests_of(self, plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The plan's ServiceRequests by code text (not its measurement Tasks)."""
        refs = [
            a["reference"]["reference"]
            for a in plan["activity"]
            if a["reference"]["reference"].startswith("ServiceRequest/")
        ]
        return {self.read(r)["code"]["text"]: self.read(r) for r in refs}

    def task_of(self, request: dict[str, Any]) -> dict[str, Any]:
        tasks = self.all("Task", ("focus", f"ServiceRequest/{request['id']}"))
        assert len(tasks) == 1
        return tasks[0]

    def counts(self) -> dict[str, int]:
        return {t: len(self.all(t)) for t in PLAN_TYPES}

    def versions(self) -> dict[str, str]:
        return {f"{t}/{r['id']}": r["meta"]["versionId"] for t in PLAN_TYPES for r in self.all(t)}


def make_gateway(database: Database, database_url: str, mode: str) -> Iterator[Gateway]:
    settings = Settings(
        database_url=database_url,
        base_url=None,
        careplan_mode=mode,  # type: ignore[arg-type]
        sender_zones={"STMARYS": ZONE},
    )
    app = create_app(settings, database=database)
    seed_templates(database, settings)
    with TestClient(app, base_url="http://testserver") as client:
        yield Gateway(database, settings, app.state.intake, client)


@pytest.fixture
def gateway(database: Database, database_url: str) -> Iterator[Gateway]:
    """Review mode (the default)."""
    yield from make_gateway(database, database_url, "review")


@pytest.fixture
def auto_gateway(database: Database, database_url: str) -> Iterator[Gateway]:
    yield from make_gateway(database, database_url, "auto")


def validate_r4b(resource: dict[str, Any]) -> None:
    """The R4B model and the official R4 JSON schema accept ``resource``: what the engines write
    skips the schema pass at run time (``services.lookup.save``), so the tests hold it to it."""
    from fhir.resources.R4B import get_fhir_model_class

    from conformance.schema import validate_resource

    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    validate_resource(resource)
