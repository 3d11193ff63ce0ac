"""The real-world corpus (tests/data/hl7v2/realworld/): ADT messages in the styles of Epic, Oracle
Health (Cerner), MEDITECH and two Indian hospital information systems, with their quirks, driven
end to end through ``POST /hl7v2`` and over MLLP. Every message is answered; every psychiatric
discharge gets a plan whose referrals are owned by a partner of the patient's own city, in the
patient's language, or are visibly unassigned with a reason; deadlines fall on the right calendar
day in the discharging facility's zone. The Indian hospitals' ABDM identifiers land under the ABDM
systems, and their discharges follow the Mental Healthcare Act 2017."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from careplan_helpers import Gateway
from fastapi.testclient import TestClient
from hl7.client import MLLPClient
from intake_helpers import ack_fields
from seeds import seed_templates

from adapters.mllp import CR, EB, SB
from fhir_gateway.app import create_app
from fhir_gateway.careplans._seed import PARTNER_TYPES, SHIPPED_PARTNERS
from fhir_gateway.careplans._templates import read_directory
from fhir_gateway.settings import Settings
from fhir_gateway.store.db import Database

CORPUS = Path(__file__).resolve().parents[1] / "data" / "hl7v2" / "realworld"
MESSAGES = sorted(CORPUS.glob("*.hl7"))  # per vendor in the order a hospital sends them
CHICAGO, KOLKATA = "America/Chicago", "Asia/Kolkata"
# How a deployment describes its senders (README: "Each facility's zone and country").
FACILITIES = {
    "PRAIRIEVIEW": (CHICAGO, "US"),
    "CAPITOLHLTH": (CHICAGO, "US"),
    "OAKRIDGEBH": (CHICAGO, "US"),
    "BMHI": (KOLKATA, "IN"),
    "SPANDANA": (KOLKATA, "IN"),
}

FLAGS = "http://fhir-gateway.org/fhir/CodeSystem/monitor-flags"
FLAG_DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"
REFERRAL = "http://fhir-gateway.org/fhir/CodeSystem/referral-service"
MHCA = "http://fhir-gateway.org/fhir/CodeSystem/mhca-2017"


@dataclass(frozen=True)
class Discharge:
    visit: str  # PV1-19
    zone: str
    day: date  # the discharge's calendar day in the facility's zone
    site: str  # whose partners may own its referrals: springfield | bengaluru
    owners: tuple[tuple[str, str | None], ...] = ()  # (referral service, owner) that must hold


PSYCHIATRIC = {
    "epic-03-a03-discharge.hl7": Discharge("PV1000441", CHICAGO, date(2026, 11, 27), "springfield"),
    # Spanish (free text) → the Spanish-speaking therapy partner
    "epic-04-a03-spanish.hl7": Discharge(
        "PV1000502",
        CHICAGO,
        date(2026, 11, 25),
        "springfield",
        (
            ("therapy-intake", "Organization/clinica-esperanza"),
            ("trauma-focused-therapy", "Organization/clinica-esperanza"),
        ),
    ),
    "epic-05-a03-text-only-dg1.hl7": Discharge(
        "PV1000610", CHICAGO, date(2026, 11, 26), "springfield"
    ),
    # sent in UTC at 04:30 on the 29th: 22:30 on the 28th in Springfield
    "cerner-02-a03-discharge-utc.hl7": Discharge(
        "91002210",
        CHICAGO,
        date(2026, 11, 28),
        "springfield",
        (("housing-support", "Organization/hope-housing"),),
    ),
    # discharged in daylight time, follow-up due after the change to standard time
    "meditech-03-a03-discharge-dst.hl7": Discharge(
        "V00071234", CHICAGO, date(2026, 10, 29), "springfield"
    ),
    # no offset, 23:30 local: the 27th in Bengaluru (the 28th if read as UTC)
    "india-02-a03-discharge.hl7": Discharge(
        "IP2611180456",
        KOLKATA,
        date(2026, 11, 27),
        "bengaluru",
        (
            ("psychiatry-follow-up", "Organization/blr-manasa-clinic"),
            ("family-psychoeducation", "Organization/blr-kutumba-group"),
        ),
    ),
    # PIN 562 (Anekal): no psychotherapy partner covers it
    "india-03-a03-hindi-rural.hl7": Discharge(
        "IP2611150391",
        KOLKATA,
        date(2026, 11, 26),
        "bengaluru",
        (("psychiatry-follow-up", "Organization/blr-manasa-clinic"), ("therapy-intake", None)),
    ),
    "india-06-a03-discharge-kannada-text.hl7": Discharge(
        "IP2611100312",
        KOLKATA,
        date(2026, 11, 24),
        "bengaluru",
        (("psychiatry-follow-up", "Organization/blr-manasa-clinic"),),
    ),
    # Bahmni-style HMIS; the ABHA number keyed with a digit missing
    "india-08-a03-bahmni-discharge.hl7": Discharge(
        "IP261124007",
        KOLKATA,
        date(2026, 12, 2),
        "bengaluru",
        (("psychiatry-follow-up", "Organization/blr-manasa-clinic"),),
    ),
}
NO_PLAN = {  # not discharges (A01, A04, A08), or not psychiatric
    "cerner-01-a04-register.hl7": "91001455",
    "cerner-03-a03-medical.hl7": "91002287",
    "india-05-a04-opd-register.hl7": "OP2611250077",
}


def _site_organizations() -> dict[str, set[str]]:
    """Organizations of the shipped directory by site: Bengaluru's cover areas in country IN."""
    docs = read_directory(SHIPPED_PARTNERS, PARTNER_TYPES)
    indian = {
        f"Location/{d['id']}"
        for d in docs
        if d["resourceType"] == "Location" and (d.get("address") or {}).get("country") == "IN"
    }
    out: dict[str, set[str]] = {"springfield": set(), "bengaluru": set()}
    for d in docs:
        if d["resourceType"] == "HealthcareService":
            areas = {a["reference"] for a in d.get("coverageArea", [])}
            out["bengaluru" if areas & indian else "springfield"].add(d["providedBy"]["reference"])
    return out


SITES = _site_organizations()


@pytest.fixture
def corpus_gateway(database: Database, database_url: str) -> Iterator[Gateway]:
    settings = Settings(
        database_url=database_url,
        base_url=None,
        careplan_mode="auto",
        sender_zones={k: v[0] for k, v in FACILITIES.items()},
        sender_countries={k: v[1] for k, v in FACILITIES.items()},
    )
    app = create_app(settings, database=database)
    seed_templates(database, settings)
    with TestClient(app, base_url="http://testserver") as client:
        yield Gateway(database, settings, app.state.intake, client)


def _over_http(gw: Gateway, raw: bytes) -> dict[str, str]:
    answer = gw.client.post(
        "/hl7v2", content=raw, headers={"Content-Type": "x-application/hl7-v2+er7"}
    )
    return ack_fields(answer.content)


def _send_all(gw: Gateway, send: Any) -> dict[str, dict[str, str]]:
    return {p.name: send(p.read_bytes()) for p in MESSAGES}


def _control_id(path: Path) -> str:
    return path.read_text().split("\n", 1)[0].split("|")[9]


def _codes(concept: dict[str, Any] | None, system: str) -> set[str]:
    return {
        c.get("code", "") for c in (concept or {}).get("coding", []) if c.get("system") == system
    }


def _unassigned_reason(flags: list[dict[str, Any]], task: str) -> str | None:
    for flag in flags:
        about = {
            e.get("valueReference", {}).get("reference")
            for e in flag.get("extension", [])
            if e.get("url") == FLAG_DETAIL
        }
        if (
            flag.get("status") == "active"
            and "unassigned" in _codes(flag.get("code"), FLAGS)
            and task in about
        ):
            return str((flag.get("code") or {}).get("text") or "")
    return None


def _local_end_of_day(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=ZoneInfo(zone))


def _check_plans(gw: Gateway) -> None:
    """Every problem of every discharge at once (one corpus run tells the whole story)."""
    problems: list[str] = []
    for name, expected in PSYCHIATRIC.items():
        encounters = gw.all("Encounter", ("identifier", expected.visit))
        assert len(encounters) == 1, name
        encounter = f"Encounter/{encounters[0]['id']}"
        plans = gw.all("CarePlan", ("encounter", encounter))
        if [p["status"] for p in plans] != ["active"]:
            problems.append(f"{name}: no active plan ({[p['status'] for p in plans]})")
            continue
        problems += _check_owners(gw, name, expected, encounter, plans[0]["subject"]["reference"])
        problems += _check_deadline(gw, name, expected, encounter)
    for name, visit in NO_PLAN.items():
        encounter = gw.all("Encounter", ("identifier", visit))[0]
        if gw.all("CarePlan", ("encounter", f"Encounter/{encounter['id']}")):
            problems.append(f"{name}: a plan for what is not a psychiatric discharge")
    assert not problems, "\n".join(problems)


def referrals(gw: Gateway, encounter: str) -> list[dict[str, Any]]:
    """The plan's referral Tasks (those with a ServiceRequest focus), not its symptom measures."""
    return [t for t in gw.all("Task", ("encounter", encounter)) if "focus" in t]


def _check_owners(
    gw: Gateway, name: str, expected: Discharge, encounter: str, patient: str
) -> list[str]:
    problems, owners = [], {}
    flags = gw.all("Flag", ("patient", patient))
    for task in referrals(gw, encounter):
        service = next(iter(_codes(gw.read(task["focus"]["reference"]).get("code"), REFERRAL)))
        owner = owners[service] = (task.get("owner") or {}).get("reference")
        if owner is None and not _unassigned_reason(flags, f"Task/{task['id']}"):
            problems.append(f"{name}: {service} has no owner and no unassigned Flag with a reason")
        elif owner is not None and owner not in SITES[expected.site]:
            problems.append(f"{name}: {service} → {owner}, not a {expected.site} partner")
    for service, owner in expected.owners:
        if owners.get(service, "missing") != owner:
            problems.append(
                f"{name}: {service} → {owners.get(service, 'no such referral')}, expected {owner}"
            )
    return problems


def _check_deadline(gw: Gateway, name: str, expected: Discharge, encounter: str) -> list[str]:
    """Psychiatry follow-up: by the end of day 7 (HEDIS FUH), counted and written in the zone."""
    for task in referrals(gw, encounter):
        if "psychiatry-follow-up" in _codes(
            gw.read(task["focus"]["reference"]).get("code"), REFERRAL
        ):
            end = datetime.fromisoformat(task["restriction"]["period"]["end"])
            due = _local_end_of_day(expected.day + timedelta(days=7), expected.zone)
            if (end, end.utcoffset()) != (due, due.utcoffset()):
                return [f"{name}: follow-up due {end.isoformat()}, expected {due.isoformat()}"]
            return []
    return [f"{name}: no psychiatry follow-up referral"]


def _check_answers(answers: dict[str, dict[str, str]]) -> None:
    assert len(answers) >= 12
    for path in MESSAGES:
        ack = answers[path.name]
        assert (ack["code"], ack["control_id"]) == ("AA", _control_id(path)), (path.name, ack)


def _check_quirks(gw: Gateway) -> None:
    """What the quirks must become: several PID-3 ids kept, repeated NK1s, text-only diagnoses."""
    dana = gw.all("Patient", ("identifier", "E4410021"))
    assert len(dana) == 1 and len(dana[0]["identifier"]) >= 3
    assert len(gw.all("RelatedPerson", ("patient", f"Patient/{dana[0]['id']}"))) == 2
    kirk = gw.all("Patient", ("identifier", "E4410512"))[0]
    texts = {
        (c.get("code") or {}).get("text")
        for c in gw.all("Condition", ("patient", f"Patient/{kirk['id']}"))
    }
    assert "Depression with suicidal ideation" in texts
    for mrn, language in (
        ("UHID26001234", "kn"),
        ("UHID26000877", "hi"),
        ("UHID26000702", "kn"),
        ("E4410388", "es"),
        ("5544332", "en"),
    ):
        patient = gw.all("Patient", ("identifier", mrn))[0]
        codes = {
            c.get("code")
            for comm in patient.get("communication", [])
            for c in comm["language"]["coding"]
        }
        assert language in codes, (mrn, patient.get("communication"))


def _check_india_jurisdiction(gw: Gateway) -> None:
    """An Indian facility: WHO ICD-10 diagnoses, and no 42 CFR Part 2 labels on what it sent."""
    patient = gw.all("Patient", ("identifier", "UHID26000877"))[0]
    ref = f"Patient/{patient['id']}"
    conditions = gw.all("Condition", ("patient", ref))
    systems = {
        c.get("system") for cond in conditions for c in (cond.get("code") or {}).get("coding", [])
    }
    assert (
        "http://hl7.org/fhir/sid/icd-10" in systems
        and "http://hl7.org/fhir/sid/icd-10-cm" not in systems
    )
    labelled = [
        f"{r['resourceType']}/{r['id']}"
        for t in ("Condition", "ServiceRequest", "Task")
        for r in gw.all(t, ("patient", ref))
        if "42CFRPart2" in {s.get("code") for s in (r.get("meta") or {}).get("security", [])}
    ]
    assert labelled == []


def _identifiers(patient: dict[str, Any]) -> set[tuple[str, str]]:
    return {(i.get("system", ""), i["value"]) for i in patient.get("identifier", [])}


def _flag(gw: Gateway, patient: str, code: str) -> dict[str, Any]:
    [flag] = [f for f in gw.all("Flag", ("patient", patient)) if code in _codes(f["code"], FLAGS)]
    return flag


def _check_abdm_and_the_act(gw: Gateway) -> None:
    """ABDM identifiers under the ABDM systems (a mistyped one kept as sent, under the sender's
    authority); the Indian discharges' plans under the Mental Healthcare Act: labelled, the
    nominated representative proposed in the Act's order, discharge planning flagged."""
    abha, local = "https://healthid.ndhm.gov.in", "urn:fhir-gateway:hl7v2:assigning-authority:"
    suresh = gw.all("Patient", ("identifier", "UHID26001234"))[0]
    assert (abha, "91-4410-2288-6631") in _identifiers(suresh)
    meena = gw.all("Patient", ("identifier", "GAN100234"))[0]
    assert {
        (abha, "91-4410-9988-7766"),
        ("http://fhir-gateway.org/fhir/sid/abha-address", "meena.gowda@abdm"),
        (f"{local}ABHA", "9144109988776"),
    } <= _identifiers(meena)
    hospital = gw.all("Organization", ("identifier", "https://facility.ndhm.gov.in|IN2910004512"))
    assert [o.get("name") for o in hospital] == ["SPANDANA"]
    for patient, first, basis in (
        (suresh, "Lakshmi", "s14(4)(b)"),  # mother before brother
        (meena, "Sharada", "s14(4)(b)"),  # a relative before the care-giver
    ):
        ref = f"Patient/{patient['id']}"
        assert all(
            "MHCA2017" in _codes({"coding": p["meta"]["security"]}, MHCA)
            for p in gw.all("CarePlan", ("patient", ref))
        )
        proposal = _flag(gw, ref, "nominated-representative")["code"]["text"]
        assert f"{first}" in proposal.split("Next in order")[0] and basis in proposal
        assert _flag(gw, ref, "discharge-planning")["status"] == "active"


def test_every_corpus_message_over_http_is_answered_and_routed(corpus_gateway: Gateway) -> None:
    answers = _send_all(corpus_gateway, lambda raw: _over_http(corpus_gateway, raw))
    _check_answers(answers)
    failed = []
    for check in (_check_plans, _check_quirks, _check_india_jurisdiction, _check_abdm_and_the_act):
        try:
            check(corpus_gateway)
        except AssertionError as exc:
            failed.append(f"{check.__name__}: {exc}")
    assert not failed, "\n\n".join(failed)


def test_every_corpus_message_over_mllp_is_answered_and_routed(
    corpus_gateway: Gateway, mllp_factory
) -> None:  # type: ignore[no-untyped-def]
    server = mllp_factory(corpus_gateway.settings)

    with MLLPClient("127.0.0.1", server.port) as mllp:

        def exchange(raw: bytes) -> dict[str, str]:
            reply = mllp.send_message(raw)
            while not reply.endswith(EB + CR):
                reply += mllp.socket.recv(4096)
            return ack_fields(reply.strip(SB + EB + CR))

        answers = _send_all(corpus_gateway, exchange)
    _check_answers(answers)
    _check_plans(corpus_gateway)
