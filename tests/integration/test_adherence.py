"""Adherence measured through the REST API: a pharmacy's orders, dispenses and injections come in,
the PDC per class is an Observation kept current, and the case manager's work items (late refill,
missed injection, unknown supply) come and go with the clock and the next fill. The clock is the
test's; the facility's zone is UTC (the suite's default)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from web_helpers import web_settings
from worklist_helpers import Desk, seed_users, visible_text

from fhir_gateway import clock, monitors
from fhir_gateway.adherence import ADHERENCE
from fhir_gateway.app import create_app
from fhir_gateway.context import SYSTEM
from fhir_gateway.monitors import MONITOR_FLAGS
from fhir_gateway.services import resources
from fhir_gateway.settings import Settings
from fhir_gateway.store.db import Database

FHIR = {"Content-Type": "application/fhir+json"}
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
PART2 = [
    {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"},
    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "ETH"},
    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "42CFRPart2"},
]


def at(day: str) -> None:
    moment = datetime.fromisoformat(f"{day}T12:00:00+00:00").astimezone(UTC)
    clock.set_clock(lambda: moment)


def post(client: TestClient, doc: dict[str, Any]) -> dict[str, Any]:
    answer = client.post(f"/{doc['resourceType']}", json=doc, headers=FHIR)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def search(client: TestClient, query: str) -> list[dict[str, Any]]:
    answer = client.get(query)
    assert answer.status_code == 200, answer.text
    return [e["resource"] for e in answer.json().get("entry", [])]


def flags(client: TestClient, patient: str, code: str) -> list[dict[str, Any]]:
    return search(client, f"/Flag?patient={patient}&_tag={MONITOR_FLAGS}|{code}")


def active(client: TestClient, patient: str, code: str) -> list[dict[str, Any]]:
    return [f for f in flags(client, patient, code) if f["status"] == "active"]


def pdc(client: TestClient, patient: str, class_id: str) -> list[dict[str, Any]]:
    return search(client, f"/Observation?subject={patient}&code={ADHERENCE}|pdc-{class_id}")


def patient(client: TestClient) -> str:
    doc = post(
        client, {"resourceType": "Patient", "name": [{"family": "Okafor", "given": ["Ada"]}]}
    )
    return f"Patient/{doc['id']}"


def quetiapine_order(client: TestClient, subject: str) -> str:
    doc = post(
        client,
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [
                    {"system": RX, "code": "312743", "display": "quetiapine 100 MG Oral Tablet"}
                ],
                "text": "quetiapine 100 MG Oral Tablet",
            },
            "subject": {"reference": subject},
            "authoredOn": "2026-01-09",
            "dosageInstruction": [
                {
                    "text": "1 tablet at night",
                    "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                    "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "TAB"}}],
                }
            ],
        },
    )
    return f"MedicationRequest/{doc['id']}"


def dispense(
    subject: str,
    handed_over: str,
    text: str,
    *,
    order: str | None = None,
    days: int | None = None,
    quantity: int | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "status": "completed",
        "medicationCodeableConcept": {"text": text},
        "subject": {"reference": subject},
        "whenHandedOver": f"{handed_over}T16:00:00Z",
    }
    if order:
        doc["authorizingPrescription"] = [{"reference": order}]
    if days is not None:
        doc["daysSupply"] = {
            "value": days,
            "unit": "day",
            "system": "http://unitsofmeasure.org",
            "code": "d",
        }
    if quantity is not None:
        doc["quantity"] = {"value": quantity, "unit": "TAB"}
    return doc


def injection(subject: str, given: str, text: str, labels: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "resourceType": "MedicationAdministration",
        "meta": {"security": labels},
        "status": "completed",
        "medicationCodeableConcept": {"text": text},
        "subject": {"reference": subject},
        "effectiveDateTime": f"{given}T15:00:00Z",
        "dosage": {"route": {"text": "subcutaneous"}, "dose": {"value": 300, "unit": "mg"}},
    }


def codes(doc: dict[str, Any]) -> set[str]:
    return {str(lb["code"]) for lb in doc.get("meta", {}).get("security", [])}


def test_pdc_from_dispenses_and_a_late_refill_that_a_new_fill_ends(
    client: TestClient, database: Database, settings: Settings
):
    at("2026-03-01")
    ada = patient(client)
    order = quetiapine_order(client, ada)
    tablet = "quetiapine 100 MG Oral Tablet"
    # 30 tablets, 1 a day (from the order): 10 January – 8 February
    first = post(client, dispense(ada, "2026-01-10", tablet, order=order, quantity=30))
    # refilled 4 days early, 30 days: carried forward to 9 February – 10 March
    second = post(client, dispense(ada, "2026-02-05", tablet, order=order, days=30))

    [obs] = pdc(client, ada, "antipsychotics")
    assert obs["valueQuantity"]["value"] == 1.0  # 10 January – 1 March, every day covered
    assert obs["effectivePeriod"] == {"start": "2025-09-03", "end": "2026-03-01"}
    assert {d["reference"] for d in obs["derivedFrom"]} == {
        f"MedicationDispense/{first['id']}",
        f"MedicationDispense/{second['id']}",
    }
    assert "PSY" in codes(obs)

    at("2026-03-17")  # 7 days without tablets: within the grace
    monitors.run_all(database, settings)
    assert active(client, ada, "refill-late") == []
    at("2026-03-18")  # 8 days: late
    monitors.run_all(database, settings)
    monitors.run_all(database, settings)  # a second run changes nothing
    [late] = active(client, ada, "refill-late")
    assert "ran out after 2026-03-10; no refill for 8 days (more than 7)" in late["code"]["text"]
    assert late["code"]["coding"][0]["code"] == "refill-late"
    [obs] = pdc(client, ada, "antipsychotics")  # still one Observation, brought up to date
    assert obs["effectivePeriod"]["end"] == "2026-03-18"
    assert obs["valueQuantity"]["value"] == round(60 / 68, 4)

    post(client, dispense(ada, "2026-03-18", tablet, order=order, days=30))
    assert active(client, ada, "refill-late") == []
    [ended] = flags(client, ada, "refill-late")
    assert ended["status"] == "inactive" and "end" in ended["period"]

    # admitted 1-4 April: the ward gives the tablets, so those days leave the measure and the
    # supply of the 18 March fill lasts 4 days longer (to 20 April instead of 16 April)
    at("2026-04-25")
    stay = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": ada},
        "period": {"start": "2026-04-01T08:00:00Z", "end": "2026-04-04T15:00:00Z"},
    }
    post(client, stay)
    [obs] = pdc(client, ada, "antipsychotics")
    days = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in obs["component"]}
    # 10 January - 25 April is 106 days, 4 in hospital: 102 measured; uncovered are 11-17 March
    # (7 days) and 21-25 April (5 days): 90 covered
    assert days == {"days-in-hospital": 4, "days-measured": 102, "days-covered": 90}
    assert obs["valueQuantity"]["value"] == round(90 / 102, 4)
    assert active(client, ada, "refill-late") == []  # 5 days late: within the grace
    assert active(client, ada, "low-adherence") == []  # 0.88

    # no refill for weeks: 10 January - 30 May is 141 days, 4 in hospital, 90 covered: 0.657
    at("2026-05-30")
    monitors.run_all(database, settings)
    [low] = active(client, ada, "low-adherence")
    assert low["code"]["text"].startswith(
        "Antipsychotics: 66% of days covered (90 of 137 days, 4 days in hospital left out) "
        "from 2026-01-10 to 2026-05-30, below 80%."
    )
    assert active(client, ada, "refill-late") != []
    # the threshold is a setting: at 0.6 the same PDC raises nothing and the item ends
    monitors.run_all(database, settings.model_copy(update={"adherence_threshold": 0.6}))
    assert active(client, ada, "low-adherence") == []


def test_a_missed_part2_injection_and_an_unknown_supply_with_their_labels(
    client: TestClient, database: Database, settings: Settings
):
    at("2026-02-01")
    ben = patient(client)
    sublocade = "buprenorphine 300 MG extended-release injection [Sublocade]"
    first = post(client, injection(ben, "2026-01-05", sublocade, PART2))  # due 2 Feb, by 9 Feb
    [obs] = pdc(client, ben, "substance-use-disorder-medications")
    assert {"R", "ETH", "42CFRPart2", "PSY"} <= codes(obs)  # derived from Part 2 data
    assert obs["valueQuantity"]["value"] == 1.0  # the injection covers its 28 days: no gap
    at("2026-02-09")  # a week past due: still within the grace
    monitors.run_all(database, settings)
    assert active(client, ben, "missed-injection") == []

    at("2026-02-10")
    monitors.run_all(database, settings)
    [missed] = active(client, ben, "missed-injection")
    assert {"R", "ETH", "42CFRPart2"} <= codes(missed)
    assert f"MedicationAdministration/{first['id']}" in missed["code"]["text"]
    assert "due 2026-02-02" in missed["code"]["text"]
    post(client, injection(ben, "2026-02-10", sublocade, PART2))
    assert active(client, ben, "missed-injection") == []

    # sertraline handed over with a count but no days' supply and no order: no PDC, a work item
    # (coded: an uncoded drug from a Part 2 program stays labelled Part 2 until it is coded)
    sertraline = dispense(ben, "2026-02-10", "sertraline 50 MG Oral Tablet", quantity=30)
    sertraline["medicationCodeableConcept"]["coding"] = [
        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "36437"}
    ]
    unknown = post(client, sertraline)
    assert pdc(client, ben, "antidepressants") == []
    [item] = active(client, ben, "adherence-unknown")
    assert "no authorizing prescription gives the daily dose" in item["code"]["text"]
    assert "42CFRPart2" not in codes(item)  # not derived from the Part 2 injection
    # the pharmacy sends the days' supply: the PDC is computed and the work item ends
    fixed = {**unknown, "daysSupply": {"value": 30, "unit": "day"}}
    fixed.pop("meta", None)
    answer = client.put(f"/MedicationDispense/{unknown['id']}", json=fixed, headers=FHIR)
    assert answer.status_code == 200, answer.text
    assert active(client, ben, "adherence-unknown") == []
    [obs] = pdc(client, ben, "antidepressants")
    assert obs["valueQuantity"]["value"] == 1.0
    # sent in error and deleted: the Observation no longer claims a PDC
    assert client.delete(f"/MedicationDispense/{unknown['id']}").status_code in (200, 204)
    [obs] = pdc(client, ben, "antidepressants")
    assert (
        "valueQuantity" not in obs
        and obs["dataAbsentReason"]["coding"][0]["code"] == "not-applicable"
    )


def test_the_work_items_are_on_the_case_managers_worklist(database: Database, database_url: str):
    at("2026-03-20")
    app = create_app(web_settings(database_url), database=database)
    seed_users(database)  # carla, a case manager (stored once per process)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as web:
        desk = Desk(database, web, app)

        def store(session: Any) -> str:
            who = resources.create(
                session,
                "Patient",
                {"resourceType": "Patient", "name": [{"family": "Mwangi", "given": ["Joy"]}]},
                SYSTEM,
            )
            joy = f"Patient/{who.stored.res_id}"  # type: ignore[union-attr]
            fill = dispense(joy, "2026-02-01", "olanzapine 10 MG Oral Tablet", days=30)
            resources.create(session, "MedicationDispense", fill, SYSTEM)
            return joy

        joy = database.write(store)
        desk.sign_in("carla")
        board = desk.client.get("/web/worklist").text
    assert "Refill late" in visible_text(board)
    assert "olanzapine 10 MG Oral Tablet" in visible_text(board)
    assert joy.split("/")[1] in board  # the row links the patient


def test_three_workers_at_once_measure_once_and_raise_each_work_item_once(
    client: TestClient, database: Database, settings: Settings
):
    at("2026-03-01")
    cara = patient(client)
    post(client, dispense(cara, "2026-01-02", "olanzapine 10 MG Oral Tablet", days=30))
    at("2026-02-20")  # the supply ran out after 31 January: 20 days late
    results: list[Any] = []

    def work() -> None:
        results.append(monitors.run_all(database, settings))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.errors for r in results] == [0, 0, 0]
    assert [r.patients_checked for r in results] == [1, 1, 1]
    assert len(active(client, cara, "refill-late")) == 1
    assert len(active(client, cara, "low-adherence")) == 1  # 30 of 50 days
    assert len(pdc(client, cara, "antipsychotics")) == 1
