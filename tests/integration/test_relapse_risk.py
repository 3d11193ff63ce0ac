"""The relapse risk summary lists exactly the signals active now, each with its source and date:
each signal switched on and off in turn on one patient (Jane Doe of the patient-page world: a
psychiatric discharge on Mon 10 Mar, an ED visit on day 6), with Flags, Observations and visits
written through the services as the engines and the intake would write them; and its cost does
not grow with the number of patients."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from monitor_helpers import local, visit
from patient_helpers import World, patient_settings, seed_highest_risk
from relapse_helpers import create, plan, report
from sqlalchemy import event

from fhir_gateway import relapse
from fhir_gateway.app import create_app
from fhir_gateway.context import SYSTEM
from fhir_gateway.monitors import MONITOR_FLAGS, codes
from fhir_gateway.services import resources
from fhir_gateway.store.db import Database


@pytest.fixture
def jane(database: Database, database_url: str) -> World:
    app = create_app(patient_settings(database_url), database=database)
    with TestClient(app, base_url="http://testserver"):
        world = seed_highest_risk(database, app)
        world.app = app  # type: ignore[attr-defined]
        database.write(relapse.seed)
        return world


def _active(world: World) -> set[tuple[str, str, str]]:
    settings = world.app.state.settings  # type: ignore[attr-defined]
    patient = f"Patient/{world.patient_id}"
    today = world.clock.now.astimezone(local("20250101000000").tzinfo).date()
    found = world.database.read(relapse.risk_summary, SYSTEM, settings, patient, today)
    return {(s.kind, s.source, s.at[:10]) for s in found}


def _flag(world: World, code: str, start: str) -> str:
    doc = {
        "resourceType": "Flag",
        "meta": {"tag": [codes.tag(code)]},
        "status": "active",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/flag-category",
                        "code": "drug",
                    }
                ]
            }
        ],
        "code": {"coding": [codes.coding(code)], "text": f"{code} for Jane"},
        "subject": {"reference": f"Patient/{world.patient_id}"},
        "period": {"start": start},
    }
    return create(world.database, doc, SYSTEM)


def _end(world: World, ref: str) -> None:
    doc = {**world.read(ref), "status": "inactive"}
    world.database.write(lambda s: resources.update(s, "Flag", doc["id"], doc, SYSTEM))


def _phq9(world: World, total: int, when: str) -> str:
    doc = {
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
        "code": {"coding": [{"system": "http://loinc.org", "code": relapse.PHQ9_LOINC}]},
        "subject": {"reference": f"Patient/{world.patient_id}"},
        "effectiveDateTime": when,
        "valueInteger": total,
    }
    return create(world.database, doc, SYSTEM)


def test_the_summary_lists_exactly_the_signals_active_now(jane: World):
    world = jane
    crisis = f"Flag/{world.crisis_flag}"
    ed_day = world.read(crisis)["period"]["start"][:10]
    assert _active(world) == {("crisis", crisis, ed_day)}  # day 7: the follow-up window is open

    world.clock.now = local("20250318090000")  # day 8, no follow-up visit: missed
    (discharge,) = [e for e in world.all("Encounter") if e["class"]["code"] == "IMP"]
    missed = ("follow-up-missed", f"Encounter/{discharge['id']}", "2025-03-10")
    assert _active(world) == {("crisis", crisis, ed_day), missed}

    refill = _flag(world, codes.REFILL_LATE, "2025-03-18T08:00:00Z")
    injection = _flag(world, codes.MISSED_INJECTION, "2025-03-17T08:00:00Z")
    low = _flag(world, codes.LOW_ADHERENCE, "2025-03-16T08:00:00Z")
    medication = {
        ("medication", refill, "2025-03-18"),
        ("medication", injection, "2025-03-17"),
        ("medication", low, "2025-03-16"),
    }
    assert _active(world) == {("crisis", crisis, ed_day), missed} | medication
    for ref in (refill, injection, low):
        _end(world, ref)
    assert _active(world) == {("crisis", crisis, ed_day), missed}

    _phq9(world, 9, "2025-03-11T10:00:00-05:00")
    assert _active(world) == {("crisis", crisis, ed_day), missed}  # one total: nothing to compare
    worse = _phq9(world, 12, "2025-03-17T10:00:00-05:00")  # +3 but mild → moderate
    assert ("phq9-worse", worse, "2025-03-17") in _active(world)
    _phq9(world, 11, "2025-03-18T08:00:00-05:00")  # the latest is better
    assert _active(world) == {("crisis", crisis, ed_day), missed}

    patient = f"Patient/{world.patient_id}"
    create(world.database, plan(patient))
    signs = create(world.database, report(patient, "voices"))
    (warning,) = world.all("Flag", ("_tag", f"{MONITOR_FLAGS}|warning-signs"))
    assert warning["extension"][1]["valueReference"]["reference"] == signs
    flagged = ("warning-signs", f"Flag/{warning['id']}", "2025-03-18")
    assert _active(world) == {("crisis", crisis, ed_day), missed, flagged}

    suicide = _flag(world, codes.SUICIDE_RISK, "2025-03-18T09:00:00Z")
    readmitted = _flag(world, codes.READMISSION, "2025-03-18T10:00:00Z")
    assert _active(world) == {
        ("crisis", crisis, ed_day),
        missed,
        flagged,
        ("suicide-risk", suicide, "2025-03-18"),
        ("readmission", readmitted, "2025-03-18"),
    }
    for ref in (suicide, readmitted, f"Flag/{warning['id']}", crisis):
        _end(world, ref)
    assert _active(world) == {missed}

    follow_up = visit("A04", "O", when="20250319100000", control="OP-1", visit_no="V400")
    assert world.app.state.intake.receive_hl7(follow_up, channel="http").code == "AA"  # type: ignore[attr-defined]
    world.clock.now = local("20250319120000")
    assert _active(world) == set()  # followed up on day 9: nothing active


def test_the_rule_for_a_worse_phq9():
    assert relapse.phq9_worse(14, 9)  # +5
    assert relapse.phq9_worse(10, 9)  # mild → moderate
    assert relapse.phq9_worse(20, 19)  # moderately severe → severe
    assert not relapse.phq9_worse(13, 10)  # +3 in the moderate band
    assert not relapse.phq9_worse(4, 0)  # minimal stays minimal
    assert not relapse.phq9_worse(9, 14)  # better
    assert [relapse.phq9_band(n) for n in (0, 4, 5, 9, 10, 14, 15, 19, 20, 27)] == [
        "minimal",
        "minimal",
        "mild",
        "mild",
        "moderate",
        "moderate",
        "moderately severe",
        "moderately severe",
        "severe",
        "severe",
    ]


def test_the_summaries_of_many_patients_take_as_many_queries_as_one(jane: World):
    world = jane
    settings = world.app.state.settings  # type: ignore[attr-defined]
    others = [
        create(world.database, {"resourceType": "Patient", "name": [{"family": f"Doe{i}"}]}, SYSTEM)
        for i in range(20)
    ]
    for i, other in enumerate(others):
        create(world.database, {**_flag_doc(other, codes.REFILL_LATE)}, SYSTEM)
        if i % 2:
            for total, day in ((4, "10"), (16, "17")):
                doc = {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {
                        "coding": [{"system": "http://loinc.org", "code": relapse.PHQ9_LOINC}]
                    },
                    "subject": {"reference": other},
                    "effectiveDateTime": f"2025-03-{day}",
                    "valueInteger": total,
                }
                create(world.database, doc, SYSTEM)
    me = f"Patient/{world.patient_id}"
    today = world.clock.now.date()

    def statements(patients: list[str]) -> tuple[int, dict[str, Any]]:
        count = {"n": 0}

        def counted(*_: Any) -> None:
            count["n"] += 1

        event.listen(world.database.engine, "before_cursor_execute", counted)
        try:
            found = world.database.read(relapse.risk_summaries, SYSTEM, settings, patients, today)
        finally:
            event.remove(world.database.engine, "before_cursor_execute", counted)
        return count["n"], found

    one, _ = statements([me])
    many, found = statements([me, *others])
    assert many == one
    assert [s.kind for s in found[others[1]]] == ["medication", "phq9-worse"]
    assert [s.kind for s in found[others[0]]] == ["medication"]


def _flag_doc(patient: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Flag",
        "meta": {"tag": [codes.tag(code)]},
        "status": "active",
        "code": {"coding": [codes.coding(code)], "text": code},
        "subject": {"reference": patient},
        "period": {"start": "2025-03-15T08:00:00Z"},
    }
