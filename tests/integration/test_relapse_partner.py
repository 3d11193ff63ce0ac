"""A partner treating the patient reports warning signs with its own credentials, through the API
with authentication on (``privacy.treating_partner_relapse_rule``): it reads the patient's
relapse-prevention plan, its report past the plan's threshold raises the case manager's work item
with the plan's action and one below raises none; a partner that does not treat the patient (not
its referral, or one it has not accepted, or has rejected or completed) finds neither the plan nor
the patient, exactly as for a patient that does not exist; a partner records no other response
(a PHQ-9), speaks for nobody else (author, reporter), reports on its own referral only, and does
not see a Part 2 plan without the patient's consent."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from relapse_helpers import plan, report
from security_data import consent
from security_helpers import bearer, flush_audit, get_token, register, secure_client

from fhir_gateway import relapse
from fhir_gateway.context import SYSTEM
from fhir_gateway.monitors import MONITOR_FLAGS
from fhir_gateway.services import lookup
from fhir_gateway.services import resources as svc
from fhir_gateway.store.db import Database

HARBOR, OTHER = "Organization/harbor", "Organization/elsewhere"
SCOPES = [
    "system/Task.rus",
    "system/ServiceRequest.rs",
    "system/Patient.rs",
    "system/Questionnaire.rs",
    "system/QuestionnaireResponse.crs",
]
PART2 = [
    {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"},
    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "ETH"},
    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "42CFRPart2"},
]


@dataclass
class World:
    client: TestClient
    database: Database
    manager: dict[str, str]
    harbor: dict[str, str]
    elsewhere: dict[str, str]
    plan_ref: str

    def put(self, doc: dict[str, Any]) -> None:
        self.database.write(lambda s: svc.update(s, doc["resourceType"], doc["id"], doc, SYSTEM))

    def flags(self) -> list[dict[str, Any]]:
        return self.database.read(
            lambda s: lookup.search(s, "Flag", [("_tag", f"{MONITOR_FLAGS}|warning-signs")])
        )


def _referral(task_id: str, owner: str, status: str, patient: str = "ravi") -> list[dict[str, Any]]:
    request = {
        "resourceType": "ServiceRequest",
        "id": f"sr-{task_id}",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient}"},
        "code": {"text": "Early intervention in psychosis"},
    }
    task = {
        "resourceType": "Task",
        "id": task_id,
        "status": status,
        "intent": "order",
        "focus": {"reference": f"ServiceRequest/sr-{task_id}"},
        "for": {"reference": f"Patient/{patient}"},
        "owner": {"reference": owner},
        "authoredOn": "2025-03-13T10:00:00Z",
    }
    return [request, task]


@pytest.fixture
def world(database: Database, database_url: str) -> Iterator[World]:
    with secure_client(database, database_url) as client:
        database.write(relapse.seed)
        docs: list[dict[str, Any]] = [
            {"resourceType": "Patient", "id": "ravi", "name": [{"family": "Kumar"}]},
            {"resourceType": "Patient", "id": "mira", "name": [{"family": "Shah"}]},
            {"resourceType": "Organization", "id": "harbor", "name": "Harbor Clinic"},
            {"resourceType": "Organization", "id": "elsewhere", "name": "Elsewhere"},
            *_referral("t-harbor", HARBOR, "in-progress"),
            *_referral("t-mira", HARBOR, "requested", "mira"),  # not yet taken on
        ]
        for doc in docs:
            database.write(lambda s, d=doc: svc.update(s, d["resourceType"], d["id"], d, SYSTEM))

        def headers(role: str, scopes: list[str], org: str) -> dict[str, str]:
            return bearer(get_token(client, register(database, role, scopes, org)))

        manager = headers("case-manager", ["system/*.cruds"], "Organization/care-coordination")
        made = client.post("/QuestionnaireResponse", json=plan("Patient/ravi"), headers=manager)
        assert made.status_code == 201, made.text
        yield World(
            client,
            database,
            manager,
            headers("partner", SCOPES, HARBOR),
            headers("partner", SCOPES, OTHER),
            f"QuestionnaireResponse/{made.json()['id']}",
        )


def _partner_report(*signs: str, patient: str = "ravi", **changes: Any) -> dict[str, Any]:
    doc = report(f"Patient/{patient}", *signs, reporter="partner")
    doc["item"] = [i for i in doc["item"] if i["linkId"] != "reporter-name"]
    doc["author"] = {"reference": HARBOR}
    doc["basedOn"] = [{"reference": "ServiceRequest/sr-t-harbor"}]
    return {**doc, **changes}


def _plans(world: World, headers: dict[str, str], patient: str = "ravi") -> list[str]:
    found = world.client.get(
        f"/QuestionnaireResponse?subject=Patient/{patient}&questionnaire={relapse.PLAN_URL}",
        headers=headers,
    )
    assert found.status_code == 200, found.text
    return [e["resource"]["id"] for e in found.json().get("entry", [])]


def test_a_treating_partner_reads_the_plan_and_its_report_past_the_threshold_raises_the_work_item(
    world,
):
    plan_id = world.plan_ref.split("/")[1]
    assert _plans(world, world.harbor) == [plan_id]
    read = world.client.get(f"/{world.plan_ref}", headers=world.harbor)
    assert read.status_code == 200 and read.json()["item"][0]["id"] == "sleep"
    questionnaire = world.client.get("/Questionnaire/warning-signs-report", headers=world.harbor)
    assert questionnaire.status_code == 200

    below = world.client.post(
        "/QuestionnaireResponse", json=_partner_report("sleep", "calls"), headers=world.harbor
    )
    assert below.status_code == 201, below.text
    assert world.flags() == []  # two early signs: the plan says three

    crossed = world.client.post(
        "/QuestionnaireResponse", json=_partner_report("tv", "voices"), headers=world.harbor
    )
    assert crossed.status_code == 201, crossed.text
    (flag,) = world.flags()
    assert flag["subject"] == {"reference": "Patient/ravi"}
    text = flag["code"]["text"]
    assert "Early warning signs reported by a partner on 2025-04-02" in text
    assert "“Hear the neighbours plotting through the wall”" in text
    assert "the plan says: Go to the crisis clinic today with my mother." in text
    details = [e["valueReference"]["reference"] for e in flag["extension"] if "valueReference" in e]
    assert details == [f"QuestionnaireResponse/{crossed.json()['id']}", world.plan_ref]
    # its own report it may read back; the case manager sees both
    own = world.client.get(f"/QuestionnaireResponse/{crossed.json()['id']}", headers=world.harbor)
    assert own.status_code == 200 and own.json()["author"] == {"reference": HARBOR}
    flush_audit(world.client)


def test_a_partner_that_does_not_treat_the_patient_finds_no_plan_and_no_patient(world):
    missing_plan = world.client.get("/QuestionnaireResponse/no-such-plan", headers=world.elsewhere)
    hidden_plan = world.client.get(f"/{world.plan_ref}", headers=world.elsewhere)
    assert hidden_plan.status_code == missing_plan.status_code == 404
    assert _plans(world, world.elsewhere) == []

    posts = {
        who: world.client.post(
            "/QuestionnaireResponse",
            json=_partner_report("voices", patient=who, author={"reference": OTHER}),
            headers=world.elsewhere,
        )
        for who in ("ravi", "no-such-patient")
    }
    assert posts["ravi"].status_code == posts["no-such-patient"].status_code == 404
    said = {k: v.json()["issue"][0]["diagnostics"] for k, v in posts.items()}
    assert said["ravi"].replace("ravi", "X") == said["no-such-patient"].replace(
        "no-such-patient", "X"
    )
    assert world.flags() == []


TREATS = {"accepted": True, "on-hold": True, "received": False, "ready": False}
TREATS |= {"rejected": False, "cancelled": False, "failed": False, "completed": False}


@pytest.mark.parametrize("status", list(TREATS))
def test_only_a_referral_taken_on_and_not_over_gives_the_right(world, status):
    for doc in [
        {"resourceType": "Patient", "id": "kay", "name": [{"family": "Lee"}]},
        *_referral("t-kay", HARBOR, status, "kay"),
    ]:
        world.put(doc)
    made = world.client.post(
        "/QuestionnaireResponse", json=plan("Patient/kay"), headers=world.manager
    )
    read = world.client.get(f"/QuestionnaireResponse/{made.json()['id']}", headers=world.harbor)
    doc = _partner_report(
        "voices", patient="kay", basedOn=[{"reference": "ServiceRequest/sr-t-kay"}]
    )
    posted = world.client.post("/QuestionnaireResponse", json=doc, headers=world.harbor)
    expected = (200, 201) if TREATS[status] else (404, 404)
    assert (read.status_code, posted.status_code) == expected, posted.text
    assert len(world.flags()) == (1 if TREATS[status] else 0)


def test_a_referral_open_for_it_to_claim_is_not_treating(world):
    # harbor sees Mira through its requested referral, but has not taken her on
    assert world.client.get("/Patient/mira", headers=world.harbor).status_code == 200
    posted = world.client.post(
        "/QuestionnaireResponse",
        json=_partner_report("voices", patient="mira"),
        headers=world.harbor,
    )
    assert posted.status_code == 404


PHQ9 = {
    "resourceType": "QuestionnaireResponse",
    "questionnaire": "http://loinc.org/q/44249-1",
    "status": "completed",
    "subject": {"reference": "Patient/ravi"},
    "author": {"reference": HARBOR},
    "item": [{"linkId": "44250-9", "answer": [{"valueInteger": 1}]}],
}
REFUSED = {
    "a PHQ-9": (PHQ9, 403, "only a warning-signs report"),
    "a plan": (
        {**plan("Patient/ravi"), "author": {"reference": HARBOR}},
        403,
        "only a warning-signs report",
    ),
    "as the family": (
        {**_partner_report("voices"), "item": report("Patient/ravi", "voices")["item"]},
        403,
        "A partner reports as a partner",
    ),
    "authored by the case manager": (
        _partner_report("voices", author={"reference": "Organization/care-coordination"}),
        403,
        "author is Organization/harbor",
    ),
    "with no author": (
        {k: v for k, v in _partner_report("voices").items() if k != "author"},
        403,
        "author is Organization/harbor",
    ),
    "on no referral": (
        {k: v for k, v in _partner_report("voices").items() if k != "basedOn"},
        422,
        "basedOn the referral it treats the patient under",
    ),
    "on another's referral": (
        _partner_report("voices", basedOn=[{"reference": "ServiceRequest/sr-t-mira"}]),
        422,
        "basedOn the referral it treats the patient under",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_partner_writes_only_its_own_report(world, case):
    doc, status, message = REFUSED[case]
    posted = world.client.post("/QuestionnaireResponse", json=doc, headers=world.harbor)
    assert posted.status_code == status, posted.text
    assert message in posted.json()["issue"][0]["diagnostics"]
    assert world.flags() == []


def test_a_partner_may_not_change_or_delete_the_plan(world):
    plan_doc = world.client.get(f"/{world.plan_ref}", headers=world.harbor).json()
    changed = world.client.put(
        f"/{world.plan_ref}", json={**plan_doc, "status": "stopped"}, headers=world.harbor
    )
    assert changed.status_code == 403
    assert world.client.delete(f"/{world.plan_ref}", headers=world.harbor).status_code == 403
    assert world.client.get(f"/{world.plan_ref}", headers=world.manager).json()["status"] == (
        "completed"
    )


def test_a_part2_plan_is_hidden_from_a_partner_without_the_patients_consent(world):
    labelled = plan("Patient/ravi", authored="2025-03-20T10:00:00Z")
    labelled["meta"] = {"security": PART2}
    made = world.client.post("/QuestionnaireResponse", json=labelled, headers=world.manager)
    assert made.status_code == 201, made.text
    newest = made.json()["id"]
    assert world.client.get(
        f"/QuestionnaireResponse/{newest}", headers=world.harbor
    ).status_code == (404)
    assert _plans(world, world.harbor) == [world.plan_ref.split("/")[1]]  # the older one only

    granted = world.client.post("/Consent", json=consent("ravi", HARBOR), headers=world.manager)
    assert granted.status_code == 201, granted.text
    assert sorted(_plans(world, world.harbor)) == sorted([world.plan_ref.split("/")[1], newest])
    shown = world.client.get(f"/QuestionnaireResponse/{newest}", headers=world.harbor)
    assert shown.status_code == 200
    codes = {c["code"] for c in shown.json()["meta"]["security"]}
    assert "NORDSCLCD" in codes  # the copy travels with its refrain
