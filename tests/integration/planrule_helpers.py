"""A discharged patient (St Mary's, Chicago: Jane Doe, F32.2, discharged 2025-03-10 14:00 CDT)
and screening results for her, shaped as the instruments store them (CONTRACT-assessments.md):
scored Observations derived from a QuestionnaireResponse, and AHC-HRSN responses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from careplan_helpers import ZONE, Gateway, adt
from fastapi.testclient import TestClient
from seeds import seed_once
from workflow_helpers import ManualClock

from fhir_gateway import assessments, careplans
from fhir_gateway.app import create_app
from fhir_gateway.monitors import MONITOR_FLAGS
from fhir_gateway.settings import Settings
from fhir_gateway.store.db import Database

LOINC = "http://loinc.org"
QUESTIONNAIRE = "http://fhir-gateway.org/fhir/Questionnaire/"
SCREENED = "2025-03-12T09:30:00-05:00"  # two days after the discharge, St Mary's local time
NOW = datetime(2025, 3, 12, 15, 0, tzinfo=UTC)  # 10:00 in Chicago: half an hour after screening


@dataclass
class Screened:
    gw: Gateway
    clock: ManualClock
    patient: str = ""

    def discharge(self, *, approve: bool = True) -> dict[str, Any] | None:
        """Jane's discharge (templates seeded, plan approved unless ``approve`` is False), stored
        once per process and mode and re-inserted for later tests (``seeds.seed_once``)."""

        def run() -> None:
            self.gw.database.write(careplans.seed, self.gw.settings)
            instruments = getattr(assessments, "seed", None)  # the instruments' Questionnaires
            if instruments is not None:
                self.gw.database.write(instruments, self.gw.settings)
            self.gw.send(adt())
            plan = self.gw.plans()[0]
            if approve and plan["status"] == "draft":
                put = self.gw.client.put(
                    f"/CarePlan/{plan['id']}", json={**plan, "status": "active"}
                )
                assert put.status_code == 200, put.text

        key = ("planrules discharge", approve)  # approved in review mode = made in auto mode
        seed_once(self.gw.database, key, run)
        self.patient = f"Patient/{self.gw.all('Patient')[0]['id']}"
        plans = self.gw.plans()
        return plans[0] if plans else None

    def post(self, doc: dict[str, Any]) -> dict[str, Any]:
        response = self.gw.client.post(f"/{doc['resourceType']}", json=doc)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def response(
        self, questionnaire: str, items: list[dict[str, Any]], status: str = "completed"
    ) -> dict[str, Any]:
        return self.post(
            {
                "resourceType": "QuestionnaireResponse",
                "questionnaire": f"{QUESTIONNAIRE}{questionnaire}",
                "status": status,
                "subject": {"reference": self.patient},
                "authored": SCREENED,
                "author": {"reference": "Organization/care-coordination"},
                **({"item": items} if items else {}),
            }
        )

    def result(
        self, code: str, *, value: dict[str, Any] | None = None, response: str | None = None
    ) -> dict[str, Any]:
        """A scored Observation (value: ``{"valueInteger": 21}``, ``{"valueCodeableConcept": …}``;
        None: unanswered)."""
        # the response the instruments scored it from (in progress here: only its reference counts)
        source = (
            response or f"QuestionnaireResponse/{self.response('phq-9', [], 'in-progress')['id']}"
        )
        doc: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "survey",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "subject": {"reference": self.patient},
            "effectiveDateTime": SCREENED,
            "derivedFrom": [{"reference": source}],
            **(
                value
                or {
                    "dataAbsentReason": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                                "code": "unknown",
                            }
                        ]
                    }
                }
            ),
        }
        return self.post(doc)

    def flags(self, code: str) -> list[dict[str, Any]]:
        return self.gw.all("Flag", ("_tag", f"{MONITOR_FLAGS}|{code}"))

    def added(self, plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The requests added to the plan since ``plan`` (by code text)."""
        now = self.gw.read(f"CarePlan/{plan['id']}")
        before = {a["reference"]["reference"] for a in plan["activity"]}
        refs = [a["reference"]["reference"] for a in now["activity"]]
        return {self.gw.read(r)["code"]["text"]: self.gw.read(r) for r in refs if r not in before}


def answer(code: str, display: str = "") -> dict[str, Any]:
    coding = {"system": LOINC, "code": code}
    return {
        "valueCodeableConcept": {"coding": [{**coding, "display": display} if display else coding]}
    }


DISPLAY = {  # LOINC answer displays, as forms send them
    "LA33-6": "Yes",
    "LA32-8": "No",
    "LA6568-5": "Not at all",
    "LA6569-3": "Several days",
    "LA6570-1": "More than half the days",
    "LA6571-9": "Nearly every day",
    "LA31993-1": "I have a steady place to live",
    "LA31994-9": "I have a place to live today, but I am worried about losing it in the future",
    "LA31995-6": "I do not have a steady place to live",
    "LA28397-0": "Often true",
    "LA6729-3": "Sometimes true",
    "LA28398-8": "Never true",
    "LA9-3": "None of the above",
}


def item(link: str, *codes: str) -> dict[str, Any]:
    """A response item; without codes, one left unanswered."""
    answers = [{"valueCoding": {"system": LOINC, "code": c, "display": DISPLAY[c]}} for c in codes]
    return {"linkId": link, **({"answer": answers} if answers else {})}


def screened(database: Database, database_url: str, mode: str) -> Iterator[Screened]:
    """The gateway of ``careplan_helpers.make_gateway``, its templates seeded by ``discharge``."""
    clock = ManualClock(datetime(2025, 3, 10, 20, 0, tzinfo=UTC))  # the discharge's evening
    settings = Settings(
        database_url=database_url,
        base_url=None,
        careplan_mode=mode,  # type: ignore[arg-type]
        sender_zones={"STMARYS": ZONE},
    )
    app = create_app(settings, database=database)
    with TestClient(app, base_url="http://testserver") as client:
        yield Screened(Gateway(database, settings, app.state.intake, client), clock)
