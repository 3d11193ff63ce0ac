"""Privacy decided in one place (fhir_gateway.privacy), seen from outside with authentication on:

* the care-plan engine releases a Part 2 referral to its partner exactly when the row policy lets
  that partner see it, for every shape of consent;
* no substance-use words reach a partner or an EHR on a resource (or a pushed copy) that does not
  carry the labels of the diagnosis they come from;
* a diagnosis in words only, from a Part 2 sender, is Part 2 until it is coded;
* whether a sender is a Part 2 program follows its facility's country (42 CFR Part 2 is US law).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from careplan_helpers import ZONE, adt
from fastapi.testclient import TestClient
from monitor_helpers import DISCHARGED, local
from security_data import PARTNER_SCOPES
from security_helpers import bearer, get_token, register, secure_client
from seeds import seed_templates
from sqlalchemy import select
from workflow_helpers import ManualClock

from fhir_gateway import monitors
from fhir_gateway.context import SYSTEM
from fhir_gateway.services import lookup
from fhir_gateway.services import resources as svc
from fhir_gateway.services.ingest import Intake
from fhir_gateway.settings import Settings
from fhir_gateway.store.db import Database
from fhir_gateway.store.outbox_tables import outbox
from fhir_gateway.workflow import push_payload

PRAIRIE = "Organization/prairie-recovery"  # the shipped directory's addiction-treatment partner
ADDICTION = "Addiction treatment programme"
PART2 = {"R", "ETH", "42CFRPart2"}
SUBSTANCE_WORDS = ("Alcohol", "alcohol", "F10")
ALCOHOL = (
    ("F32.2", "Major depressive disorder, severe"),
    ("F10.20", "Alcohol dependence uncomplicated"),
)
ENGINE_TYPES = (
    "CarePlan",
    "Goal",
    "ServiceRequest",
    "Task",
    "CareTeam",
    "Flag",
    "Communication",
    "CommunicationRequest",
)
PARTNER_TYPES = ("Task", "ServiceRequest", "Patient")
INTAKE_TYPES = ("Encounter", "Condition", "Patient", "MeasureReport")  # what the engines start from


@dataclass
class World:
    client: TestClient
    database: Database
    intake: Intake
    settings: Settings
    case_manager: dict[str, str]

    def send(self, raw: bytes) -> None:
        answer = self.intake.receive_hl7(raw, channel="http")
        assert answer.code == "AA", answer.body

    def all(self, res_type: str, *params: tuple[str, str]) -> list[dict[str, Any]]:
        return self.database.read(lambda s: lookup.search(s, res_type, list(params)))

    def one(self, res_type: str, *params: tuple[str, str]) -> dict[str, Any]:
        [found] = self.all(res_type, *params)
        return found

    def headers(self, role: str, scopes: list[str], organization: str | None) -> dict[str, str]:
        return bearer(get_token(self.client, register(self.database, role, scopes, organization)))


@pytest.fixture
def world(database: Database, database_url: str) -> Iterator[World]:
    with secure_client(
        database, database_url, careplan_mode="auto", sender_zones={"STMARYS": ZONE}
    ) as client:
        settings: Settings = client.app.state.settings  # type: ignore[attr-defined]
        seed_templates(database, settings)
        manager = bearer(
            get_token(
                client,
                register(
                    database, "case-manager", ["system/*.cruds"], "Organization/care-coordination"
                ),
            )
        )
        yield World(client, database, client.app.state.intake, settings, manager)  # type: ignore[attr-defined]


def _codes(resource: dict[str, Any]) -> set[str]:
    return {s.get("code") for s in (resource.get("meta") or {}).get("security", [])}


# -- the engine's release equals the row policy's view ----------------------------------------


def _consent(patient: str, **provision: Any) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
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
                    "reference": {"reference": PRAIRIE},
                }
            ],
            **provision,
        },
    }


_RECIPIENT = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}
    ]
}
_DENY_PRAIRIE = {
    "type": "deny",
    "actor": [{"role": _RECIPIENT, "reference": {"reference": PRAIRIE}}],
}
_RESEARCH = [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH"}]
SHAPES: dict[str, tuple[bool, Any]] = {  # shape → (permits prairie, the Consent for a patient)
    "permit": (True, lambda p: _consent(p)),
    "nested deny": (False, lambda p: _consent(p, provision=[_DENY_PRAIRIE])),
    "purpose-limited": (False, lambda p: _consent(p, purpose=_RESEARCH)),
    "expired": (False, lambda p: _consent(p, period={"start": "2019-01-01", "end": "2020-12-31"})),
    "revoked": (False, lambda p: _consent(p)),  # recorded, then made inactive
    "another patient's": (False, lambda p: _consent("Patient/someone-else")),
}


def _record(world: World, shape: str, patient: str) -> None:
    created = world.client.post(
        "/Consent", json=SHAPES[shape][1](patient), headers=world.case_manager
    )
    assert created.status_code == 201, created.text
    if shape == "revoked":
        revoked = {**created.json(), "status": "inactive"}
        answer = world.client.put(
            f"/Consent/{revoked['id']}", json=revoked, headers=world.case_manager
        )
        assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("when", ["before the discharge", "after the discharge"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_engine_releases_a_part2_referral_exactly_when_the_row_policy_shows_it(
    world, shape, when
):  # type: ignore[no-untyped-def]
    world.database.write(
        lambda s: svc.update(
            s, "Patient", "someone-else", {"resourceType": "Patient", "id": "someone-else"}, SYSTEM
        )
    )
    prairie = world.headers("partner", PARTNER_SCOPES, PRAIRIE)
    if when == "before the discharge":
        world.send(
            adt("A01", control="ADMIT-1", diagnoses=ALCOHOL, discharged="", sent="20250301090000")
        )
        _record(world, shape, f"Patient/{world.one('Patient', ('identifier', 'MRN100'))['id']}")
        world.send(adt(diagnoses=ALCOHOL))
    else:
        world.send(adt(diagnoses=ALCOHOL))
        _record(world, shape, f"Patient/{world.one('Patient', ('identifier', 'MRN100'))['id']}")

    request = next(
        r for r in world.all("ServiceRequest") if (r.get("code") or {}).get("text") == ADDICTION
    )
    task = world.one("Task", ("focus", f"ServiceRequest/{request['id']}"))
    assert task["owner"]["reference"] == PRAIRIE and PART2 <= _codes(task)
    released = task["status"] == "requested" and "businessStatus" not in task  # not withheld
    shown_task = world.client.get(f"/Task/{task['id']}", headers=prairie).status_code == 200
    shown_request = (
        world.client.get(f"/ServiceRequest/{request['id']}", headers=prairie).status_code == 200
    )
    assert (released, shown_task, shown_request) == (SHAPES[shape][0],) * 3, (shape, when)


# -- no substance-use words without their labels ------------------------------------------------


def _leaks(resources: list[dict[str, Any]]) -> list[str]:
    """Resources whose JSON holds substance-use words but not the labels those words carry."""
    out = []
    for resource in resources:
        text = orjson.dumps(resource).decode()
        if any(w in text for w in SUBSTANCE_WORDS) and not PART2 <= _codes(resource):
            out.append(f"{resource.get('resourceType')}/{resource.get('id')}")
    return out


def _served(client: TestClient, headers: dict[str, str], res_type: str) -> list[dict[str, Any]]:
    answer = client.get(f"/{res_type}?_count=200", headers=headers)
    assert answer.status_code == 200, (res_type, answer.text)
    return [e["resource"] for e in answer.json().get("entry", [])]


def _as_sent(database: Database, body: bytes, focus: str | None) -> bytes:
    """A partner push is queued as its Task version; the worker builds the Bundle as it sends."""
    if body or not focus:
        return body
    built = database.read(push_payload, focus, "")
    return built[0] if isinstance(built, tuple) else b""


def _pushed(database: Database) -> list[dict[str, Any]]:
    """Every resource in the notifications and partner pushes queued in the outbox."""
    rows = database.read(lambda s: s.execute(select(outbox.c.body, outbox.c.focus)).all())
    bodies = [_as_sent(database, body, focus) for body, focus in rows]
    out: list[dict[str, Any]] = []
    for body in bodies:
        doc = orjson.loads(body) if body else {}
        out += [e["resource"] for e in doc.get("entry", []) if "resource" in e] or (
            [doc] if doc else []
        )
    return out


def test_no_substance_use_text_reaches_a_partner_or_an_ehr_without_its_labels(world):  # type: ignore[no-untyped-def]
    ehr = world.headers("ehr", ["system/*.rs"], "Organization/ehr-clinic")
    partners = {
        f"Organization/{o['id']}": world.headers(
            "partner", PARTNER_SCOPES, f"Organization/{o['id']}"
        )
        for o in world.all("Organization")
    }  # tokens first: the clock goes back to 2025
    clock = ManualClock(local(DISCHARGED))
    world.send(adt(diagnoses=ALCOHOL))
    relative = next(r for r in world.all("RelatedPerson"))
    patient = world.one("Patient", ("identifier", "MRN100"))
    family = _consent(f"Patient/{patient['id']}")
    family["provision"]["actor"][0]["reference"]["reference"] = f"RelatedPerson/{relative['id']}"
    world.database.write(lambda s: svc.create(s, "Consent", family, SYSTEM))
    clock.now = local("20250314090000")  # referrals overdue, family education due
    monitors.run_all(world.database, world.settings)

    written = {t: world.all(t) for t in ENGINE_TYPES}
    assert written["Flag"] and written["CommunicationRequest"] and written["Communication"]
    follow_up = next(
        r
        for r in written["ServiceRequest"]
        if "PSY" in _codes(r) and r.get("reasonReference") and len(r["reasonReference"]) == 2
    )
    assert not PART2 & _codes(follow_up)  # a psychiatry referral that lists both diagnoses

    assert (
        _leaks([r for t in ENGINE_TYPES + INTAKE_TYPES for r in _served(world.client, ehr, t)])
        == []
    ), "ehr"
    owners = {t["owner"]["reference"] for t in written["Task"] if t.get("owner")}
    assert owners <= set(partners)
    for owner, partner in sorted(partners.items()):
        seen = [r for t in PARTNER_TYPES for r in _served(world.client, partner, t)]
        assert _leaks(seen) == [], owner
    pushed = _pushed(world.database)
    assert any(
        r.get("resourceType") == "ServiceRequest" for r in pushed
    )  # a partner with its own server
    assert _leaks(pushed) == [], "outbox"
    referrals = [r for r in pushed if r.get("resourceType") in ("Task", "ServiceRequest")]
    assert all("PSY" in _codes(r) for r in referrals)  # the labels travel with the pushed copy


# -- a diagnosis in words only, and the country of the sender --------------------------------------


def _intake(database: Database, settings: Settings, **overrides: Any) -> Intake:
    from fhir_gateway.app import install_rules

    configured = settings.model_copy(update=overrides)
    install_rules(configured, database)
    return Intake(database, configured)


def _condition_labels(database: Database, mrn: str) -> dict[str, set[str]]:
    def run(session: Any) -> dict[str, set[str]]:
        [patient] = lookup.search(session, "Patient", [("identifier", mrn)])
        found = lookup.search(session, "Condition", [("subject", f"Patient/{patient['id']}")])
        return {
            (c["code"].get("coding") or [{}])[0].get("code") or c["code"].get("text"): _codes(c)
            for c in found
        }

    return database.read(run)


def _words_only(sender: str, mrn: str, control: str) -> bytes:
    raw = adt(
        control=control,
        mrn=mrn,
        visit=f"V-{mrn}",
        diagnoses=(("F32.2", "Depression"),),
        next_of_kin=False,
    )
    raw += b"\rDG1|2|||Alcohol dependence uncomplicated||F"
    return raw.replace(b"EPIC|STMARYS", sender.encode())


def test_a_diagnosis_in_words_only_from_a_part2_sender_is_part2_until_coded(database, settings):  # type: ignore[no-untyped-def]
    intake = _intake(database, settings, sender_countries={"NIMHANS": "IN"})
    try:
        assert (
            intake.receive_hl7(_words_only("EPIC|STMARYS", "M-US", "W-1"), channel="test").code
            == "AA"
        )
        assert (
            intake.receive_hl7(_words_only("HIS|NIMHANS", "M-IN", "W-2"), channel="test").code
            == "AA"
        )
        us = _condition_labels(database, "M-US")
        assert us["Alcohol dependence uncomplicated"] == PART2 and us["F32.2"] == {"PSY"}
        assert _condition_labels(database, "M-IN")["Alcohol dependence uncomplicated"] == set()

        def code_it(session: Any) -> None:
            [condition] = [
                c
                for c in lookup.search(session, "Condition", [])
                if c["code"].get("text") == "Alcohol dependence uncomplicated"
                and PART2 <= _codes(c)
            ]
            sent = {k: v for k, v in condition.items() if k != "meta"}  # as a sender sends it
            coded = {
                **sent,
                "code": {
                    "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F43.1"}],
                    "text": "Post-traumatic stress disorder",
                },
            }
            svc.update(session, "Condition", condition["id"], coded, SYSTEM)

        database.write(code_it)
        assert _condition_labels(database, "M-US")["F43.1"] == {"PSY"}  # coded: the code decides
    finally:
        _intake(database, settings)


def _sud(sender: str, mrn: str, control: str) -> bytes:
    raw = adt(
        control=control,
        mrn=mrn,
        visit=f"V-{mrn}",
        diagnoses=(("F10.20", "Alcohol dependence"),),
        next_of_kin=False,
    )
    return raw.replace(b"EPIC|STMARYS", sender.encode())


def test_part2_follows_the_country_of_the_sender_by_default(database, settings):  # type: ignore[no-untyped-def]
    assert settings.part2_senders is None
    intake = _intake(
        database,
        settings,
        sender_countries={"NIMHANS": "IN", "STMARYS": "US"},
        careplan_mode="auto",
    )
    seed_templates(database, intake.settings)
    try:
        for sender, mrn in (
            ("HIS|NIMHANS", "M-IN"),
            ("EPIC|STMARYS", "M-US"),
            ("LAB|ELSEWHERE", "M-UNKNOWN"),
        ):
            assert intake.receive_hl7(_sud(sender, mrn, f"C-{mrn}"), channel="test").code == "AA"
        india = _condition_labels(database, "M-IN")["F10.20"]
        assert "42CFRPart2" not in india and "R" not in india and "ETH" in india
        assert PART2 <= _condition_labels(database, "M-US")["F10.20"]
        assert PART2 <= _condition_labels(database, "M-UNKNOWN")["F10.20"]  # default country US

        def addiction_labels(mrn: str) -> set[str]:
            def run(session: Any) -> set[str]:
                [patient] = lookup.search(session, "Patient", [("identifier", mrn)])
                found = lookup.search(
                    session, "ServiceRequest", [("subject", f"Patient/{patient['id']}")]
                )
                return next(
                    _codes(r) for r in found if (r.get("code") or {}).get("text") == ADDICTION
                )

            return database.read(run)

        assert "42CFRPart2" not in addiction_labels("M-IN") and "ETH" in addiction_labels("M-IN")
        assert PART2 <= addiction_labels("M-US")
    finally:
        _intake(database, settings)


def test_an_explicit_part2_list_overrides_the_country(database, settings):  # type: ignore[no-untyped-def]
    intake = _intake(
        database, settings, sender_countries={"NIMHANS": "IN"}, part2_senders=["HIS|NIMHANS"]
    )
    try:
        assert intake.receive_hl7(_sud("HIS|NIMHANS", "M-IN", "C-1"), channel="test").code == "AA"
        assert intake.receive_hl7(_sud("EPIC|STMARYS", "M-US", "C-2"), channel="test").code == "AA"
        assert PART2 <= _condition_labels(database, "M-IN")["F10.20"]
        assert "42CFRPart2" not in _condition_labels(database, "M-US")["F10.20"]
    finally:
        _intake(database, settings)


def test_a_substance_use_diagnosis_written_through_the_api_without_a_sender_is_part2(client):  # type: ignore[no-untyped-def]
    patient = client.post("/Patient", json={"resourceType": "Patient"}).json()
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": f"Patient/{patient['id']}"},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F10.20"}]},
    }
    created = client.post("/Condition", json=condition)
    assert created.status_code == 201 and PART2 <= _codes(created.json())


def test_an_encounter_inherits_the_labels_of_each_live_diagnosis_it_names(client):  # type: ignore[no-untyped-def]
    subject = {
        "reference": f"Patient/{client.post('/Patient', json={'resourceType': 'Patient'}).json()['id']}"
    }

    def condition(code: str) -> str:
        coding = [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}]
        body = {"resourceType": "Condition", "subject": subject, "code": {"coding": coding}}
        return str(client.post("/Condition", json=body).json()["id"])

    def encounter_labels(*conditions: str) -> set[str]:
        body = {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": subject,
            "diagnosis": [{"condition": {"reference": f"Condition/{c}"}} for c in conditions],
        }
        return _codes(client.post("/Encounter", json=body).json())

    alcohol, depression, opioids = condition("F10.20"), condition("F32.9"), condition("F11.20")
    assert PART2 <= encounter_labels(depression, alcohol)
    assert PART2 <= encounter_labels(opioids)
    client.delete(f"/Condition/{alcohol}")
    client.delete(f"/Condition/{opioids}")
    assert not PART2 & encounter_labels(depression, alcohol, opioids)
    assert encounter_labels(depression) == encounter_labels(depression, alcohol)


def test_a_transaction_stores_an_encounter_labelled_by_its_new_diagnosis_in_one_version(client):  # type: ignore[no-untyped-def]
    """The Encounter comes first in the Bundle and names the Condition the Bundle creates (which
    names the Encounter back): it is written after the Condition, so its one version carries the
    diagnosis's labels; none without them is ever stored."""
    coding = [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F10.20"}]
    klass = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:patient", "resource": {"resourceType": "Patient"}},
            {
                "fullUrl": "urn:uuid:encounter",
                "resource": {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": klass,
                    "subject": {"reference": "urn:uuid:patient"},
                    "diagnosis": [{"condition": {"reference": "urn:uuid:condition"}}],
                },
            },
            {
                "fullUrl": "urn:uuid:condition",
                "resource": {
                    "resourceType": "Condition",
                    "subject": {"reference": "urn:uuid:patient"},
                    "encounter": {"reference": "urn:uuid:encounter"},
                    "code": {"coding": coding},
                },
            },
        ],
    }
    for entry in bundle["entry"]:
        entry["request"] = {"method": "POST", "url": entry["resource"]["resourceType"]}
    answer = client.post("/", json=bundle)
    assert answer.status_code == 200, answer.text
    locations = [e["response"]["location"] for e in answer.json()["entry"]]
    assert [loc.split("/")[0] for loc in locations] == ["Patient", "Encounter", "Condition"]
    encounter_id = locations[1].split("/")[1]
    history = client.get(f"/Encounter/{encounter_id}/_history").json()
    assert history["total"] == 1
    assert PART2 <= _codes(history["entry"][0]["resource"])
