"""Pharmacy messages through the same intake as ADT (POST /hl7v2, MLLP, the durable inbox): orders,
dispenses and injections land as linked MedicationRequest/-Dispense/-Administration, a re-send
changes nothing, broken messages get AE/AR with ERR (never a 500), the Part 2 label follows the
sender, and the same resources work over FHIR REST with a partner kept out."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
from hl7.client import MLLPClient
from intake_helpers import ack_fields
from security_helpers import bearer, get_token, register, secure_client

from adapters.mllp import CR, EB, SB
from fhir_gateway.services import lookup

PHARMACY = Path(__file__).resolve().parents[1] / "data" / "hl7v2" / "pharmacy"
HL7 = {"content-type": "x-application/hl7-v2+er7"}
FHIR = {"content-type": "application/fhir+json"}
PLACER = "urn:fhir-gateway:hl7v2:assigning-authority:EPIC"


def _send(client: Any, name: str) -> Any:
    return client.post("/hl7v2", content=(PHARMACY / f"{name}.hl7").read_bytes(), headers=HL7)


def _search(client: Any, kind: str, **params: str) -> list[dict[str, Any]]:
    found = client.get(f"/{kind}", params=params)
    assert found.status_code == 200, found.text
    return [e["resource"] for e in found.json().get("entry", [])]


def test_orders_dispenses_and_injections_arrive_linked_and_a_resend_changes_nothing(client) -> None:  # type: ignore[no-untyped-def]
    for name in ("rde_o11_discharge", "rds_o13_two_fills", "ras_o17_lai"):
        answer = _send(client, name)
        assert answer.status_code == 200 and ack_fields(answer.text)["code"] == "AA", answer.text
    [order] = _search(client, "MedicationRequest", identifier=f"{PLACER}|ORD88121")
    assert order["dosageInstruction"][0]["timing"]["repeat"]["frequency"] == 2
    assert order["encounter"]["reference"].startswith("Encounter/")
    # the pharmacy's two fills name the order the hospital sent (ORC-2), not a copy of it
    fills = _search(client, "MedicationDispense", prescription=f"MedicationRequest/{order['id']}")
    assert sorted(f["whenHandedOver"][:16] for f in fills) == [
        "2026-11-21T10:12",
        "2026-11-21T10:13",
    ]
    assert len(_search(client, "MedicationRequest", identifier=f"{PLACER}|ORD88120")) == 1
    [injection] = _search(client, "MedicationAdministration", code="1719649")
    lai_order = client.get(f"/{injection['request']['reference']}").json()
    assert lai_order["dosageInstruction"][0]["timing"]["repeat"]["periodUnit"] == "wk"
    assert _search(client, "MedicationAdministration", **{"effective-time": "ge2026-12-18"})
    patient = order["subject"]["reference"]
    assert len(_search(client, "MedicationRequest", subject=patient)) == 3

    versions = client.get("/_history", params={"_count": 1}).json()["total"]
    first = (PHARMACY / "rds_o13_two_fills.hl7").read_bytes()
    again = client.post("/hl7v2", content=first, headers=HL7)
    assert again.status_code == 200 and ack_fields(again.text)["code"] == "AA"
    assert client.get("/_history", params={"_count": 1}).json()["total"] == versions
    assert len(_search(client, "MedicationDispense")) == 3


def test_broken_pharmacy_messages_are_answered_ae_or_ar_with_err(client) -> None:  # type: ignore[no-untyped-def]
    good = (PHARMACY / "rde_o11_discharge.hl7").read_bytes()
    cases = {
        # RXE-2 (the drug) emptied: AE naming RXE-2
        "no-drug": (
            re.sub(rb"\rRXE\|\|[^|]*\|", b"\rRXE||^^|", good).replace(b"RDE2026", b"NODRUG"),
            422,
            "AE",
        ),
        # RXD-3 not a date: AE
        "bad-date": (
            (PHARMACY / "rds_o13_two_fills.hl7")
            .read_bytes()
            .replace(b"|20261121101000|", b"|20261341101000|")
            .replace(b"RDS20261121-4471", b"BADDATE-1"),
            422,
            "AE",
        ),
        # a message structure no pharmacy message has: AR
        "structure": (
            good.replace(b"RDE^O11^RDE_O11|RDE2026", b"RDE^O11^RDE_O99|STRUCT"),
            400,
            "AR",
        ),
    }
    for label, (raw, status, code) in cases.items():
        answer = client.post("/hl7v2", content=raw, headers=HL7)
        fields = ack_fields(answer.text)
        assert (answer.status_code, fields["code"], fields["err"]) == (status, code, True), label
        assert fields["control_id"], label
    assert "RXE^1^2" in client.post("/hl7v2", content=cases["no-drug"][0], headers=HL7).text
    failed = client.get("/inbox", params={"status": "failed"}).json()["messages"]
    assert len(failed) == 3  # kept, with their error, for a replay once fixed


def test_a_dispense_over_mllp_is_acknowledged_after_it_is_stored(mllp_factory, client) -> None:  # type: ignore[no-untyped-def]
    server = mllp_factory()
    raw = (PHARMACY / "ras_o01_v23_methadone.hl7").read_bytes()
    with MLLPClient("127.0.0.1", server.port) as mllp:
        reply = mllp.send_message(raw)
        while not reply.endswith(EB + CR):
            reply += mllp.socket.recv(4096)
    fields = ack_fields(reply.strip(SB + EB + CR))
    assert (fields["code"], fields["control_id"]) == ("AA", "MT-RAS-2291")
    doses = _search(client, "MedicationAdministration", code="6813")
    assert sorted(d["status"] for d in doses) == ["completed", "not-done"]


def _labels(database: Any, mrn: str, kind: str) -> list[set[str]]:
    with database.session() as session:
        [patient] = lookup.search(session, "Patient", [("identifier", mrn)])
        found = lookup.search(session, kind, [("subject", f"Patient/{patient['id']}")])
    return [{s["code"] for s in r.get("meta", {}).get("security", [])} for r in found]


def test_buprenorphine_is_a_part2_record_only_from_a_part2_program(database, settings) -> None:  # type: ignore[no-untyped-def]
    from fhir_gateway.app import install_rules
    from fhir_gateway.services.ingest import Intake

    configured = settings.model_copy(update={"part2_senders": ["QS1|BRIDGE_OTP"]})
    install_rules(configured, database)
    try:
        intake = Intake(database, configured)
        otp = (PHARMACY / "rds_o01_v23_part2.hl7").read_bytes()
        assert intake.receive_hl7(otp, channel="test").code == "AA"
        hospital = (
            otp.replace(b"QS1|BRIDGE_OTP", b"EPIC|MERCY_GENERAL")
            .replace(b"MRN48213", b"MRN50001")
            .replace(b"QS1-0412", b"GEN-0412")
            .replace(b"OTP-7781^QS1", b"GEN-5512^EPIC")
        )
        assert intake.receive_hl7(hospital, channel="test").code == "AA"
        for kind in ("MedicationDispense", "MedicationRequest"):
            assert _labels(database, "MRN48213", kind) == [{"R", "ETH", "42CFRPart2", "PSY"}]
            [general] = _labels(database, "MRN50001", kind)
            assert general == {"ETH", "PSY"}  # substance-use data, not a Part 2 record
    finally:
        install_rules(settings, database)


def test_medication_resources_over_rest_and_a_partner_does_not_see_them(
    database, database_url
) -> None:  # type: ignore[no-untyped-def]
    with secure_client(database, database_url) as api:
        manager = register(database, "case-manager", ["system/*.cruds"])
        partner = register(database, "partner", ["system/*.rs"], organization="Organization/hope")
        headers = bearer(get_token(api, manager))
        patient = api.post(
            "/Patient",
            json={"resourceType": "Patient", "name": [{"family": "Okafor"}]},
            headers=headers,
        ).json()
        subject = {"reference": f"Patient/{patient['id']}"}
        drug = {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "352309"}]
        }
        order = api.post(
            "/MedicationRequest",
            json={
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": drug,
                "subject": subject,
            },
            headers=headers,
        ).json()
        created = {}
        for kind, body in {
            "MedicationDispense": {
                "status": "completed",
                "whenHandedOver": "2026-11-21",
                "authorizingPrescription": [{"reference": f"MedicationRequest/{order['id']}"}],
                "daysSupply": {
                    "value": 30,
                    "unit": "days",
                    "system": "http://unitsofmeasure.org",
                    "code": "d",
                },
            },
            "MedicationAdministration": {
                "status": "completed",
                "effectiveDateTime": "2026-12-18T09:20:00Z",
                "request": {"reference": f"MedicationRequest/{order['id']}"},
            },
            "MedicationStatement": {"status": "active"},
        }.items():
            response = api.post(
                f"/{kind}",
                json={
                    "resourceType": kind,
                    "medicationCodeableConcept": drug,
                    "subject": subject,
                    **body,
                },
                headers=headers,
            )
            assert response.status_code == 201, response.text
            created[kind] = response.json()["id"]
        found = api.get(
            "/MedicationDispense",
            params={"patient": patient["id"], "_include": "MedicationDispense:prescription"},
            headers=headers,
        ).json()
        assert {e["resource"]["resourceType"] for e in found["entry"]} == {
            "MedicationDispense",
            "MedicationRequest",
        }
        assert (
            api.get(
                "/MedicationStatement",
                params={"subject": f"Patient/{patient['id']}"},
                headers=headers,
            ).json()["total"]
            == 1
        )
        capability = api.get("/metadata").json()
        served = {r["type"] for r in capability["rest"][0]["resource"]}
        assert {"MedicationDispense", "MedicationAdministration"} <= served

        # medication data are outside a partner's role: the same refusal whether the id exists
        outsider = bearer(get_token(api, partner))
        for kind, rid in created.items():
            assert api.get(f"/{kind}/{rid}", headers=outsider).status_code == 403, kind
            assert api.get(f"/{kind}/no-such-id", headers=outsider).status_code == 403, kind
            assert api.get(f"/{kind}", headers=outsider).status_code == 403, kind


def test_discharge_medications_in_a_notification_are_stored_on_the_discharge(client) -> None:  # type: ignore[no-untyped-def]
    from intake_helpers import DAVINCI

    bundle = orjson.loads((DAVINCI / "discharge-notification-message-bundle-01.json").read_bytes())
    patient = next(
        e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    bundle["entry"].append(
        {
            "fullUrl": "urn:uuid:2b7d4f8e-8a1c-4c55-9d6e-0c1f7a5e1a01",
            "resource": {
                "resourceType": "MedicationRequest",
                "identifier": [{"system": "http://example.org/rx", "value": "DC-RX-1"}],
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": {
                    "coding": [
                        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "352309"}
                    ]
                },
                "subject": {"reference": patient},
            },
        }
    )
    assert client.post("/$process-message", json=bundle, headers=FHIR).status_code == 200
    [encounter] = _search(client, "Encounter")
    [order] = _search(
        client, "MedicationRequest", encounter=f"Encounter/{encounter['id']}", category="discharge"
    )
    assert order["identifier"][0]["value"] == "DC-RX-1"
    assert order["subject"]["reference"] == encounter["subject"]["reference"]
