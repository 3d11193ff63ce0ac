"""No silent gaps: a referral no partner can take is a visible work item for the case manager
(a Flag coded ``unassigned`` whose text names what was missing), recorded in the plan, listed by
the monitors and ended when someone takes it; an A01/A03 that recorded no stay (no PV1) is a work
item too. Real St Mary's messages through the intake, the shipped partner directory."""

# ruff: noqa: F811
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from careplan_helpers import adt, validate_r4b
from monitor_helpers import Monitored
from typer.testing import CliRunner

from fhir_gateway import monitors
from fhir_gateway.monitors import MONITOR_FLAGS

FOLLOW_UP = "Psychiatry follow-up visit within 7 days"
PEER = "Peer support group"
FHIR = {"Content-Type": "application/fhir+json"}
NAMI = "HealthcareService/nami-central-il-groups"


def task_of(m: Monitored, title: str) -> dict[str, Any]:
    return m.gw.task_of(m.gw.requests_of(m.plan())[title])


def unassigned(m: Monitored, task: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in m.flags("unassigned") if f"Task/{task['id']}" in f["code"]["text"]]


def progress(m: Monitored, task: dict[str, Any]) -> list[str]:
    """The plan's own record for the referral: its activity's progress notes."""
    [activity] = [
        a for a in m.plan()["activity"] if a["reference"]["reference"] == task["focus"]["reference"]
    ]
    return [p["text"] for p in activity.get("progress", [])]


def put(m: Monitored, doc: dict[str, Any]) -> None:
    body = {k: v for k, v in doc.items() if k != "meta"}
    response = m.gw.client.put(f"/{doc['resourceType']}/{doc['id']}", json=body, headers=FHIR)
    assert response.status_code in (200, 201), response.text


def nami_not_accepting(m: Monitored) -> None:
    service = m.gw.read(NAMI)
    extension = {
        "url": "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/newpatients",
        "extension": [
            {
                "url": "acceptingPatients",
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/AcceptingPatientsCS",
                            "code": "no",
                        }
                    ]
                },
            }
        ],
    }
    put(m, {**service, "extension": [extension]})


def nami_gone(m: Monitored) -> None:
    assert m.gw.client.delete(f"/{NAMI}").status_code in (200, 204)


def nothing(m: Monitored) -> None:
    return None


CASES: list[tuple[str, Callable[[Monitored], None], dict[str, str], str, list[str]]] = [
    (
        "language",
        nothing,
        {"language": "es^Spanish^ISO6391"},
        PEER,
        ["speaks the patient's language (es)", "NAMI", "speak: en"],
    ),
    (
        "area",
        nothing,
        {"address": "1 Lake Shore Dr^^Chicago^IL^60601^USA^H"},
        FOLLOW_UP,
        ["covers the patient's area (Chicago, IL 60601)", "Springfield"],
    ),
    (
        "new clients",
        nami_not_accepting,
        {},
        PEER,
        ["is accepting new clients (not accepting: NAMI"],
    ),
    # The only other peer-support partner is the Bengaluru demo one: the service exists, not here.
    (
        "service",
        nami_gone,
        {},
        PEER,
        ["no partner offering this service covers the patient's area (Springfield, IL 62701)"],
    ),
]


@pytest.mark.parametrize(
    ("why", "setup", "message", "title", "words"), CASES, ids=[c[0] for c in CASES]
)
def test_a_referral_without_an_eligible_partner_is_an_unassigned_work_item_saying_why(
    monitored: Monitored,
    why: str,
    setup: Callable[[Monitored], None],
    message: dict[str, str],
    title: str,
    words: list[str],
) -> None:
    setup(monitored)
    monitored.discharge(**message)
    task = task_of(monitored, title)
    assert "owner" not in task
    [item] = unassigned(monitored, task)
    text = item["code"]["text"]
    assert (
        item["status"] == "active" and item["subject"] == task["for"] and "has no partner: " in text
    )
    assert all(w in text for w in words), text
    assert (
        item["code"]["coding"][0]["code"] == "unassigned"
        and item["meta"]["tag"][0]["code"] == "unassigned"
    )
    validate_r4b(item)
    notes = progress(monitored, task)
    assert (
        len(notes) == 1
        and notes[0].startswith("Unassigned: ")
        and all(w in notes[0] for w in words)
    )
    owned = [t for t in monitored.gw.all("Task") if t.get("owner")]
    assert not any(unassigned(monitored, t) for t in owned)  # only the gaps


def test_unassigned_work_items_are_listed_by_the_monitors_and_not_repeated(
    monitored: Monitored, monkeypatch: Any
) -> None:
    from fhir_gateway.cli import app
    from fhir_gateway.settings import get_settings

    raw = adt(language="es^Spanish^ISO6391")
    monitored.send(raw, "20250310140000")
    monitored.send(raw)  # the sender re-sends the same message
    monitors.run_all(monitored.gw.database, monitored.gw.settings)
    monitors.run_all(monitored.gw.database, monitored.gw.settings)
    task = task_of(monitored, PEER)
    [item] = unassigned(monitored, task)
    assert item["id"] in {f["id"] for f in monitored.gw.database.read(monitors.alerts)}
    found = monitored.gw.client.get(
        f"/Flag?_tag={MONITOR_FLAGS}|unassigned&subject={task['for']['reference']}"
    )
    assert item["id"] in {e["resource"]["id"] for e in found.json().get("entry", [])}
    monkeypatch.setenv("FHIR_GATEWAY_DATABASE_URL", monitored.gw.settings.database_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["monitors"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"Referral '{PEER}' (Task/{task['id']}) has no partner" in result.output
    assert "speaks the patient's language (es)" in result.output


def test_assigning_the_referral_ends_its_work_item_and_the_plan_says_so(
    monitored: Monitored,
) -> None:
    monitored.discharge(language="es^Spanish^ISO6391")
    task = task_of(monitored, PEER)
    monitored.at("20250311090000")
    put(
        monitored,
        {
            **task,
            "owner": {"reference": "Organization/springfield-cmhc", "display": "Springfield CMHC"},
        },
    )
    [item] = unassigned(monitored, task)
    assert item["status"] == "inactive" and item["period"]["end"].startswith("2025-03-11T14:00")
    assert (
        progress(monitored, task)[-1]
        == "Assigned: Springfield CMHC (Organization/springfield-cmhc)"
    )
    assert item["id"] not in {f["id"] for f in monitored.gw.database.read(monitors.alerts)}


def test_an_unassigned_referral_is_raised_when_its_plan_is_approved(reviewed: Monitored) -> None:
    # Polish: nobody offering addiction treatment speaks it; the referral also waits for consent
    reviewed.discharge(
        language="pl^Polish^ISO6391",
        diagnoses=(("F32.2", "Depression"), ("F10.20", "Alcohol dependence")),
    )
    addiction = task_of(reviewed, "Addiction treatment programme")
    assert "owner" not in addiction
    assert reviewed.flags("unassigned") == []  # in review: nobody waits yet
    reviewed.at("20250311090000")
    put(reviewed, {**reviewed.plan(), "status": "active"})
    addiction = task_of(reviewed, "Addiction treatment programme")
    assert addiction["status"] == "draft"  # still waiting for consent, and for a partner
    [item] = unassigned(reviewed, addiction)
    assert "speaks the patient's language (pl)" in item["code"]["text"]


# -- (e) a visit message that recorded no stay ------------------------------------------------------


def without_pv1(raw: bytes) -> bytes:
    return b"\r".join(s for s in raw.split(b"\r") if not s.startswith(b"PV1"))


@pytest.mark.parametrize("event", ["A03", "A01"])
def test_an_admission_or_discharge_without_pv1_is_a_work_item(
    monitored: Monitored, event: str
) -> None:
    raw = without_pv1(adt(event, control=f"NOPV1-{event}"))
    monitored.send(raw)
    assert monitored.gw.all("Encounter") == [] and monitored.gw.plans() == []
    [item] = monitored.flags("no-encounter")
    assert item["status"] == "active" and item["subject"]["reference"] == monitored.patient()
    assert f"ADT^{event} NOPV1-{event} from EPIC|STMARYS" in item["code"]["text"]
    assert "has no PV1 segment" in item["code"]["text"]
    validate_r4b(item)
    monitored.gw.intake.receive_hl7(raw, channel="http")  # re-sent: the same work item
    assert len(monitored.flags("no-encounter")) == 1


def test_a_discharge_with_pv1_raises_no_such_work_item(monitored: Monitored) -> None:
    monitored.discharge()
    assert monitored.flags("no-encounter") == []
