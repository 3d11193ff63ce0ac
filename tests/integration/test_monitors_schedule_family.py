"""The monitors' schedule (shared by every worker) and the family messages."""

from __future__ import annotations

import threading
from typing import Any

from careplan_helpers import validate_r4b
from monitor_helpers import Monitored

from fhir_gateway import monitors

FHIR = {"Content-Type": "application/fhir+json"}


def put(m: Monitored, doc: dict[str, Any]) -> None:
    response = m.gw.client.put(f"/{doc['resourceType']}/{doc['id']}", json=doc, headers=FHIR)
    assert response.status_code in (200, 201), response.text


def test_run_due_runs_once_per_interval_whoever_asks(monitored: Monitored) -> None:
    db, settings = monitored.gw.database, monitored.gw.settings
    monitored.discharge()
    monitored.at("20250312140100")
    assert monitors.run_due(db, settings, worker="a") is not None
    assert monitors.run_due(db, settings, worker="b") is None  # same turn: already taken
    monitored.clock.advance(seconds=settings.monitor_interval + 1)
    again = monitors.run_due(db, settings, worker="b")
    assert again is not None and again.flagged == 0  # nothing new: one flag per condition
    last = db.read(monitors.last_run)
    assert last["worker"] == "b" and last["result"]["tasks_checked"] == again.tasks_checked


def test_two_workers_at_once_raise_each_alert_once(monitored: Monitored) -> None:
    monitored.discharge()
    monitored.at("20250312140100")
    results: list[Any] = []

    def work() -> None:
        results.append(monitors.run_all(monitored.gw.database, monitored.gw.settings))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flags = monitored.flags("overdue")
    assert len(results) == 3  # every worker finished its run
    assert flags and sum(r.flagged for r in results) == len(flags)
    assert sum(r.errors for r in results) == 0
    assert len({f["id"] for f in flags}) == len(flags)
    care_team = [
        c
        for c in monitored.communications("unacknowledged")
        if c["recipient"][0]["reference"].startswith("CareTeam/")
    ]
    assert len(care_team) == len(flags)


def _family(m: Monitored) -> tuple[str, str]:
    """Jane's care team (active: auto mode) holds her husband John from NK1."""
    m.discharge()
    team = m.gw.all("CareTeam")[0]
    relative = next(
        p["member"]["reference"]
        for p in team["participant"]
        if p["member"]["reference"].startswith("RelatedPerson/")
    )
    return m.patient(), relative


def consent(m: Monitored, patient: str, actor: str) -> None:
    put(
        m,
        {
            "resourceType": "Consent",
            "id": "family",
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
            "patient": {"reference": patient},
            "policyRule": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}
                ]
            },
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
                        "reference": {"reference": actor},
                    }
                ],
            },
        },
    )


def test_without_consent_the_family_hears_nothing(monitored: Monitored) -> None:
    _family(monitored)
    assert monitors.run_all(monitored.gw.database, monitored.gw.settings).family_messages == 0
    assert monitored.gw.all("CommunicationRequest") == []


def test_with_consent_the_family_gets_education_once_and_a_reminder(monitored: Monitored) -> None:
    patient, relative = _family(monitored)
    consent(monitored, patient, relative)
    put(
        monitored,
        {
            "resourceType": "Appointment",
            "id": "follow-up",
            "status": "booked",
            "description": "Psychiatry follow-up at Springfield CMHC",
            "start": "2025-03-12T10:00:00-05:00",
            "end": "2025-03-12T10:30:00-05:00",
            "participant": [{"actor": {"reference": patient}, "status": "accepted"}],
        },
    )
    monitored.at("20250311090000")  # 25 h before the appointment: within the 48 h
    first = monitors.run_all(monitored.gw.database, monitored.gw.settings)
    second = monitors.run_all(monitored.gw.database, monitored.gw.settings)
    assert (first.family_messages, second.family_messages) == (2, 0)
    requests = {
        r["category"][0]["coding"][0]["code"]: r for r in monitored.gw.all("CommunicationRequest")
    }
    assert set(requests) == {"family-education", "appointment-reminder"}
    assert requests["appointment-reminder"]["occurrenceDateTime"] == "2025-03-12T10:00:00-05:00"
    for code, request in requests.items():
        [sent] = monitored.communications(code)
        assert sent["recipient"] == [{"reference": relative}]
        assert sent["basedOn"] == [{"reference": f"CommunicationRequest/{request['id']}"}]
        validate_r4b(request)
        validate_r4b(sent)
    assert "988" in monitored.communications("family-education")[0]["payload"][0]["contentString"]


def test_a_reminder_waits_until_the_appointment_is_near(monitored: Monitored) -> None:
    patient, relative = _family(monitored)
    consent(monitored, patient, relative)
    put(
        monitored,
        {
            "resourceType": "Appointment",
            "id": "later",
            "status": "booked",
            "start": "2025-03-20T10:00:00-05:00",
            "end": "2025-03-20T10:30:00-05:00",
            "participant": [{"actor": {"reference": patient}, "status": "accepted"}],
        },
    )
    monitored.at("20250311090000")
    monitors.run_all(monitored.gw.database, monitored.gw.settings)
    assert monitored.communications("appointment-reminder") == []
    monitored.at("20250318110000")  # 47 h before
    monitors.run_all(monitored.gw.database, monitored.gw.settings)
    assert len(monitored.communications("appointment-reminder")) == 1
