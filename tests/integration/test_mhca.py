"""India's Mental Healthcare Act 2017 at an MHCA facility (a Bengaluru hospital), end to end with
authentication on: the nominated representative proposed in the Act's order and only confirmed by
a case manager (s14), discharge planning with its participants (s98), advance directives for the
psychiatrist's decision (s5, s9–s11), partners seeing an MHCA patient's referrals only under
s23(2), the patient's records with what was withheld and the notice (s25), ABDM identifiers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from careplan_helpers import adt, segment
from fastapi.testclient import TestClient
from security_data import PARTNER_SCOPES
from security_helpers import bearer, get_token, register, secure_client
from seeds import seed_templates

from fhir_gateway import monitors
from fhir_gateway.context import SYSTEM
from fhir_gateway.privacy import MHCA, MHCA_SYSTEM
from fhir_gateway.services import lookup
from fhir_gateway.services import resources as svc
from fhir_gateway.services.ingest import Intake
from fhir_gateway.store.db import Database

FLAGS = "http://fhir-gateway.org/fhir/CodeSystem/monitor-flags"
FLAG_DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"
SERVICE = "http://fhir-gateway.org/fhir/CodeSystem/referral-service"
BENGALURU = "#21, 2nd Main^Banashankari 2nd Stage^Bengaluru^KA^560070^IND^H"
PSYCHOSIS = (("F20.0", "Paranoid schizophrenia"),)
MOTHER, BROTHER = ("Gowda^Lakshmi", "MTH^Mother^HL70063"), ("Gowda^Ravi", "BRO^Brother^HL70063")
CASE_MANAGER = "Organization/care-coordination"
NR_ROLE = f"{MHCA_SYSTEM}|nominated-representative"
RECIPIENT = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}
    ]
}


@dataclass
class World:
    client: TestClient
    database: Database
    intake: Intake
    manager: dict[str, str]

    def send(self, raw: bytes) -> None:
        answer = self.intake.receive_hl7(raw, channel="http")
        assert answer.code == "AA", answer.body

    def all(self, res_type: str, *params: tuple[str, str]) -> list[dict[str, Any]]:
        return self.database.read(lambda s: lookup.search(s, res_type, list(params)))

    def read(self, ref: str) -> dict[str, Any]:
        found = self.database.read(lambda s: lookup.read(s, ref))
        assert found is not None, ref
        return found

    def patient(self) -> str:
        [patient] = self.all("Patient", ("identifier", "UHID900"))
        return f"Patient/{patient['id']}"

    def kin(self, given: str) -> str:
        people = self.all("RelatedPerson", ("patient", self.patient()))
        return next(f"RelatedPerson/{p['id']}" for p in people if given in str(p.get("name")))

    def flags(self, code: str) -> list[dict[str, Any]]:
        return [
            f
            for f in self.all("Flag", ("patient", self.patient()))
            if any(c.get("code") == code for c in f["code"]["coding"])
        ]

    def post(self, res_type: str, doc: dict[str, Any], status: int = 201) -> dict[str, Any]:
        answer = self.client.post(f"/{res_type}", json=doc, headers=self.manager)
        assert answer.status_code == status, answer.text
        return dict(answer.json())

    def headers(self, role: str, scopes: list[str], organization: str | None) -> dict[str, str]:
        return bearer(get_token(self.client, register(self.database, role, scopes, organization)))


@pytest.fixture
def world(database: Database, database_url: str) -> Iterator[World]:
    with secure_client(
        database,
        database_url,
        careplan_mode="auto",
        sender_zones={"STMARYS": "Asia/Kolkata"},
        sender_countries={"STMARYS": "IN"},
    ) as client:
        seed_templates(database, client.app.state.settings)  # type: ignore[attr-defined]
        manager = bearer(
            get_token(client, register(database, "case-manager", ["system/*.cruds"], CASE_MANAGER))
        )
        yield World(client, database, client.app.state.intake, manager)  # type: ignore[attr-defined]


def stay(
    *kin: tuple[str, str], event: str = "A03", diagnoses: Any = PSYCHOSIS, control: str = "BLR-3"
) -> bytes:
    """A stay at St Mary's, Bengaluru (an MHCA facility by its country), with these NK1s."""
    admit = event == "A01"
    raw = adt(
        event,
        control=control,
        mrn="UHID900",
        visit="IP900",
        diagnoses=diagnoses,
        address=BENGALURU,
        next_of_kin=False,
        family="Gowda",
        discharged="" if admit else "20250310140000",
        sent="20250301090000" if admit else "",
    ).decode()
    nk1 = "".join(
        segment("NK1", {1: str(i), 2: name, 3: rel, 5: "^PRN^CP^^91^^98450001{i:02d}"}) + "\r"
        for i, (name, rel) in enumerate(kin, start=1)
    )
    return raw.replace("\rPV1|", f"\r{nk1}PV1|", 1).encode()


def details(flag: dict[str, Any]) -> set[str]:
    return {
        e["valueReference"]["reference"]
        for e in flag.get("extension", [])
        if e.get("url") == FLAG_DETAIL
    }


def has_role(doc: dict[str, Any], field: str = "relationship") -> bool:
    return any(
        f"{c.get('system')}|{c.get('code')}" == NR_ROLE
        for concept in doc.get(field) or []
        for c in concept.get("coding", [])
    )


# -- s14: the nominated representative -----------------------------------------------------------


def test_a_discharge_without_a_representative_proposes_the_first_in_the_acts_order_and_appoints_no_one(
    world,
):  # type: ignore[no-untyped-def]
    world.send(stay(BROTHER, MOTHER))  # the brother is sent first; a parent comes before a sibling
    [flag] = world.flags("nominated-representative")
    mother = world.kin("Lakshmi")
    assert flag["status"] == "active" and mother in details(flag)
    text = flag["code"]["text"]
    assert "Lakshmi" in text and "s14(4)(b)" in text and "appoints no one" in text
    assert text.index("Lakshmi") < text.index("Ravi")  # the brother is next in order
    people = world.all("RelatedPerson", ("patient", world.patient()))
    assert not any(has_role(p) for p in people)
    [team] = world.all("CareTeam", ("patient", world.patient()))
    assert not any(has_role(p, "role") for p in team["participant"])


def test_the_person_the_advance_directive_names_is_proposed_first(world):  # type: ignore[no-untyped-def]
    world.send(stay(BROTHER, MOTHER, event="A01", control="BLR-1"))
    world.post("Consent", directive(world.patient(), representative=world.kin("Ravi")))
    world.send(stay(BROTHER, MOTHER))
    [flag] = world.flags("nominated-representative")
    assert world.kin("Ravi") in details(flag) and "s14(4)(a)" in flag["code"]["text"]


def test_confirming_the_representative_puts_them_in_the_care_team_and_ends_the_proposal(world):  # type: ignore[no-untyped-def]
    world.send(stay(BROTHER, MOTHER))
    mother, brother = world.kin("Lakshmi"), world.kin("Ravi")
    partner = world.headers("partner", PARTNER_SCOPES, "Organization/blr-manasa-clinic")
    refused = world.client.post(f"/{mother}/$confirm-nominated-representative", headers=partner)
    assert refused.status_code == 403
    answer = world.client.post(
        f"/{mother}/$confirm-nominated-representative", headers=world.manager
    )
    assert answer.status_code == 200, answer.text
    assert has_role(answer.json()) and has_role(world.read(mother))
    [team] = world.all("CareTeam", ("patient", world.patient()))
    assert [p["member"]["reference"] for p in team["participant"] if has_role(p, "role")] == [
        mother
    ]
    [flag] = world.flags("nominated-representative")
    assert flag["status"] == "inactive"
    [planning] = world.flags("discharge-planning")  # s98 now counts on her
    assert f"the nominated representative ({mother})" in planning["code"]["text"]
    second = world.client.post(
        f"/{brother}/$confirm-nominated-representative", headers=world.manager
    )
    assert second.status_code == 422 and "s16" in second.text


def test_the_representative_is_told_indias_crisis_line_not_the_us_one(world):  # type: ignore[no-untyped-def]
    world.send(stay(MOTHER))
    mother = world.kin("Lakshmi")
    confirmed = world.client.post(
        f"/{mother}/$confirm-nominated-representative", headers=world.manager
    )
    assert confirmed.status_code == 200, confirmed.text
    monitors.run_all(world.database, world.client.app.state.settings)  # type: ignore[attr-defined]
    sent = [
        c["payload"][0]["contentString"]
        for c in world.all("Communication", ("recipient", mother))
        if "Family education" in c["payload"][0]["contentString"]
    ]
    assert sent and "Tele-MANAS on 14416" in sent[0] and "988" not in sent[0]


# -- s98: discharge planning ---------------------------------------------------------------------


def test_a_plan_without_its_s98_participants_is_flagged_until_they_are_recorded(world):  # type: ignore[no-untyped-def]
    world.send(stay(MOTHER))
    [plan] = world.all("CarePlan", ("patient", world.patient()))
    assert MHCA["code"] in {s["code"] for s in plan["meta"]["security"]}
    [flag] = world.flags("discharge-planning")
    text = flag["code"]["text"]
    assert flag["status"] == "active" and "s98" in text
    for who in ("the patient", "nominated representative", "will live with", "psychiatrist"):
        assert who in text
    mother = world.kin("Lakshmi")
    world.client.post(f"/{mother}/$confirm-nominated-representative", headers=world.manager)
    plan = world.read(f"CarePlan/{plan['id']}")
    [attending] = world.all("Practitioner")
    plan["contributor"] = [
        {"reference": world.patient()},
        {"reference": mother},
        {"reference": f"Practitioner/{attending['id']}"},
    ]
    answer = world.client.put(f"/CarePlan/{plan['id']}", json=plan, headers=world.manager)
    assert answer.status_code == 200, answer.text
    [flag] = world.flags("discharge-planning")
    assert flag["status"] == "inactive"


# -- s5, s9–s11: advance directives --------------------------------------------------------------


def directive(
    patient: str, *, refuses: tuple[str, ...] = (), representative: str | None = None
) -> dict[str, Any]:
    actors = (
        [
            {
                "role": {"coding": [{"system": MHCA_SYSTEM, "code": "nominated-representative"}]},
                "reference": {"reference": representative},
            }
        ]
        if representative
        else []
    )
    codes = [{"coding": [{"system": SERVICE, "code": c}]} for c in refuses]
    refusals = {"provision": [{"type": "deny", "code": codes}]} if refuses else {}
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "adr"}
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "42348-3"}]}],
        "patient": {"reference": patient},
        "dateTime": "2024-06-01",
        "provision": {"type": "permit", **({"actor": actors} if actors else {}), **refusals},
    }


def capacity(patient: str, value: bool, when: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": MHCA_SYSTEM, "code": "capacity"}], "text": "Capacity (s4)"},
        "subject": {"reference": patient},
        "effectiveDateTime": when,
        "valueBoolean": value,
    }


def test_an_activity_against_the_directive_is_flagged_for_the_psychiatrist_and_an_emergency_one_is_not(
    world,
):  # type: ignore[no-untyped-def]
    crisis = world.client.get(
        "/ActivityDefinition/crisis-follow-up-call", headers=world.manager
    ).json()
    crisis["priority"] = "stat"  # this hospital runs the call as emergency treatment (s94)
    world.client.put(
        "/ActivityDefinition/crisis-follow-up-call", json=crisis, headers=world.manager
    )
    harm = (*PSYCHOSIS, ("X78.0", "Intentional self-harm by sharp glass"))
    world.send(stay(MOTHER, event="A01", control="BLR-1", diagnoses=harm))
    patient = world.patient()
    world.post(
        "Consent",
        directive(patient, refuses=("long-acting-medication-review", "crisis-follow-up-call")),
    )
    world.post("Observation", capacity(patient, False, "2025-03-09T10:00:00+05:30"))
    world.send(stay(MOTHER, diagnoses=harm))

    requests = {
        r["code"]["coding"][0]["code"]: r for r in world.all("ServiceRequest", ("patient", patient))
    }
    depot, call = requests["long-acting-medication-review"], requests["crisis-follow-up-call"]
    flagged = {
        ref
        for f in world.flags("advance-directive")
        if f["status"] == "active"
        for ref in details(f)
    }
    assert f"ServiceRequest/{depot['id']}" in flagged  # for the psychiatrist's decision
    assert f"ServiceRequest/{call['id']}" not in flagged  # s9: emergency treatment
    assert depot["status"] == "active"  # not removed from the plan
    [plan] = world.all("CarePlan", ("patient", patient))
    [activity] = [
        a
        for a in plan["activity"]
        if a["reference"]["reference"] == f"ServiceRequest/{depot['id']}"
    ]
    assert any(p["text"].startswith("Advance directive:") for p in activity["progress"])

    world.post("Observation", capacity(patient, True, "2025-03-12T10:00:00+05:30"))  # s5(3)
    assert all(f["status"] == "inactive" for f in world.flags("advance-directive"))


# -- s23: partners see an MHCA patient's referrals only under s23(2) ----------------------------


def _referral(world: World, task_id: str, labels: list[dict[str, Any]]) -> None:
    """An unassigned, requested supported-employment referral (two Bengaluru partners offer it)."""
    code = {
        "coding": [{"system": SERVICE, "code": "supported-employment"}],
        "text": "Supported employment",
    }
    patient = world.patient()
    meta = {"security": labels}
    request = {
        "resourceType": "ServiceRequest",
        "id": f"sr-{task_id}",
        "meta": meta,
        "status": "active",
        "intent": "order",
        "code": code,
        "subject": {"reference": patient},
    }
    task = {
        "resourceType": "Task",
        "id": task_id,
        "meta": meta,
        "status": "requested",
        "intent": "order",
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]
        },
        "focus": {"reference": f"ServiceRequest/sr-{task_id}"},
        "for": {"reference": patient},
        "requester": {"reference": CASE_MANAGER},
    }

    def store(session: Any) -> None:
        svc.update(session, "ServiceRequest", request["id"], request, SYSTEM)
        svc.update(session, "Task", task_id, task, SYSTEM)

    world.database.write(store)


def release(patient: str, recipient: str, data: list[str], **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
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
        "category": [{"coding": [{"system": MHCA_SYSTEM, "code": "s23-2-f"}]}],
        "patient": {"reference": patient},
        "performer": [{"reference": "Organization/care-coordination"}],
        "sourceReference": {"reference": "DocumentReference/board-order-17"},
        "provision": {
            "type": "permit",
            "actor": [{"role": RECIPIENT, "reference": {"reference": recipient}}],
            "data": [{"meaning": "instance", "reference": {"reference": r}} for r in data],
        },
    }
    doc.update(changes)
    return doc


def test_an_mhca_referral_is_shown_to_its_owner_and_to_no_partner_merely_offered_it(world):  # type: ignore[no-untyped-def]
    world.send(stay(MOTHER))
    patient = world.patient()
    follow_up = next(
        t
        for t in world.all("Task", ("patient", patient))
        if (t.get("owner") or {}).get("reference") == "Organization/blr-manasa-clinic"
    )
    assert MHCA["code"] in {s["code"] for s in follow_up["meta"]["security"]}
    clinic = world.headers("partner", PARTNER_SCOPES, "Organization/blr-manasa-clinic")
    assert world.client.get(f"/Task/{follow_up['id']}", headers=clinic).status_code == 200  # (b)

    psy = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}
    _referral(world, "open-us", [psy])
    _referral(world, "open-mhca", [psy, dict(MHCA)])
    trust = world.headers("partner", PARTNER_SCOPES, "Organization/blr-kaushalya-trust")
    assert world.client.get("/Task/open-us", headers=trust).status_code == 200  # may claim it
    assert world.client.get("/Task/open-mhca", headers=trust).status_code == 404  # not in care
    search = world.client.get("/Task", params={"status": "requested"}, headers=trust).json()
    assert "open-mhca" not in {e["resource"]["id"] for e in search.get("entry", [])}


def test_a_recorded_release_shows_what_it_names_to_whom_it_names_and_nothing_else(world):  # type: ignore[no-untyped-def]
    world.send(stay(MOTHER))
    patient = world.patient()
    psy = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}
    _referral(world, "open-mhca", [psy, dict(MHCA)])
    housing = world.headers("partner", PARTNER_SCOPES, "Organization/blr-asare-home")
    assert world.client.get("/Task/open-mhca", headers=housing).status_code == 404
    unnamed = release(patient, "Organization/blr-asare-home", [])
    del unnamed["provision"]["data"]  # what it releases is not named
    refused = world.client.post("/Consent", json=unnamed, headers=world.manager)
    assert refused.status_code == 422 and "Consent.provision.data" in refused.text
    no_order = release(
        patient, "Organization/blr-asare-home", ["Task/open-mhca"], sourceReference=None
    )
    assert (
        world.client.post(
            "/Consent", json={k: v for k, v in no_order.items() if v}, headers=world.manager
        ).status_code
        == 422
    )
    world.post(
        "Consent", release(patient, "Organization/blr-asare-home", ["Task/open-mhca"])
    )  # (f)
    assert world.client.get("/Task/open-mhca", headers=housing).status_code == 200
    assert world.client.get("/ServiceRequest/sr-open-mhca", headers=housing).status_code == 404
    other = world.headers("partner", PARTNER_SCOPES, "Organization/blr-kaushalya-trust")
    assert world.client.get("/Task/open-mhca", headers=other).status_code == 404


# -- s25: the patient's records ------------------------------------------------------------------


def test_the_patients_records_leave_out_what_was_withheld_and_say_so(world):  # type: ignore[no-untyped-def]
    world.send(stay(MOTHER))
    patient = world.patient()
    [condition] = world.all("Condition", ("patient", patient))
    [attending] = world.all("Practitioner")
    withholding = {
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
        "category": [{"coding": [{"system": MHCA_SYSTEM, "code": "s25-2-a"}]}],
        "patient": {"reference": patient},
        "dateTime": "2025-03-11",
        "performer": [{"reference": f"Practitioner/{attending['id']}", "display": "Dr Alan Smith"}],
        "provision": {
            "type": "deny",
            "data": [
                {"meaning": "instance", "reference": {"reference": f"Condition/{condition['id']}"}}
            ],
        },
    }
    refused = world.client.post("/Consent", json=withholding, headers=world.manager)
    assert refused.status_code == 422 and "policyRule.text" in refused.text  # a reason is recorded
    withholding["policyRule"] = {"text": "The patient is not yet ready to read the diagnosis"}
    world.post("Consent", withholding)

    answer = world.client.get(f"/{patient}/$records", headers=world.manager)
    assert answer.status_code == 200, answer.text
    bundle = answer.json()
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "Patient" in kinds and "Encounter" in kinds and "Condition" not in kinds
    [notice] = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "OperationOutcome"
    ]
    words = notice["issue"][0]["diagnostics"]
    assert "not yet ready" in words and "Mental Health Review Board" in words and "s25(3)" in words
    partner = world.headers("partner", PARTNER_SCOPES, "Organization/blr-manasa-clinic")
    assert world.client.get(f"/{patient}/$records", headers=partner).status_code == 403


# -- ABDM identifiers through the API ------------------------------------------------------------


def test_abha_numbers_are_checked_and_kept_in_the_igs_form(world):  # type: ignore[no-untyped-def]
    def patient(value: str) -> dict[str, Any]:
        ident = {"system": "https://healthid.ndhm.gov.in", "value": value}
        return {"resourceType": "Patient", "identifier": [{"value": "UHID1"}, ident]}

    bad = world.client.post("/Patient", json=patient("9144-1099"), headers=world.manager)
    assert bad.status_code == 400 and "Patient.identifier[1].value" in bad.text
    assert "9144-1099" not in bad.text
    good = world.post("Patient", patient("91441099887766"))
    assert good["identifier"][1]["value"] == "91-4410-9988-7766"
    found = world.client.get(
        "/Patient",
        params={"identifier": "https://healthid.ndhm.gov.in|91-4410-9988-7766"},
        headers=world.manager,
    ).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [good["id"]]
