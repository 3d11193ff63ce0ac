"""Pharmacy messages mapped segment by segment: RDE (ORC/RXE/TQ1/RXR → MedicationRequest), RDS
(RXD → MedicationDispense) and RAS (RXA → MedicationAdministration), in their v2.5 O11/O13/O17
and v2.3 O01 forms, with what vendors really send (no RXR or TQ1, text-only drugs, NDCs with and
without dashes, several RXD per order, repeated ORC groups), and what is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.hl7v2 import (
    ConvertOptions,
    DataTypeError,
    MessageTooLarge,
    RequiredFieldMissing,
    SegmentSequenceError,
    UnsupportedEvent,
    UnsupportedMessage,
    build_ack,
    convert,
)
from adapters.hl7v2._map_pharmacy import MAX_ORDERS
from adapters.hl7v2._medication_values import normalise_ndc
from adapters.hl7v2._segment_maps import set_path
from adapters.hl7v2._timing import repeat_pattern, tq_duration

DATA = Path(__file__).resolve().parents[3] / "data" / "hl7v2" / "pharmacy"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC = "http://hl7.org/fhir/sid/ndc"
UCUM = "http://unitsofmeasure.org"
SCT = "http://snomed.info/sct"
V2_0162 = "http://terminology.hl7.org/CodeSystem/v2-0162"


def _created(name_or_text: str | bytes, **options: Any) -> dict[str, list[dict[str, Any]]]:
    """The resources a message creates (its POST bodies), by type."""
    raw = (DATA / name_or_text).read_bytes() if isinstance(name_or_text, str) else name_or_text
    bundle = convert(raw, options=ConvertOptions(**options)).bundle
    out: dict[str, list[dict[str, Any]]] = {}
    for entry in bundle["entry"]:
        if entry["request"]["method"] == "POST":
            out.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    return out


def _codes(concept: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c.get("system", ""), c["code"]) for c in concept.get("coding", [])}


def _message(*segments: str, mtype: str = "RDS^O13^RDS_O13", version: str = "2.5.1") -> bytes:
    msh = f"MSH|^~\\&|RX|PHARM|GW|GW|20261121101500||{mtype}|CTRL-1|P|{version}"
    pid = "PID|1||MRN7^^^MERCY^MR||DOE^JANE||19900101|F"
    return "\r".join([msh, pid, *segments]).encode()


# --- RDE: the order ------------------------------------------------------------------------


def test_rde_o11_orc_rxe_tq1_rxr_fill_the_medication_request() -> None:
    [aripiprazole, suboxone] = _created("rde_o11_discharge.hl7")["MedicationRequest"]
    # ORC-2/ORC-3: placer and filler numbers; RXE-15 the prescription number
    idents = {(i["type"]["coding"][0]["code"], i["value"]) for i in aripiprazole["identifier"]}
    assert idents == {("PLAC", "ORD88120"), ("FILL", "RX55120"), ("RXN", "RX55120")}
    assert aripiprazole["status"] == "active" and aripiprazole["intent"] == "order"
    assert aripiprazole["authoredOn"].startswith("2026-11-20T14:05:00")  # RXE-32
    assert aripiprazole["requester"]["reference"].startswith("urn:uuid:")  # ORC-12
    assert aripiprazole["encounter"]["reference"].startswith("urn:uuid:")  # PV1-19, the stay
    # ORC-29 O: an outpatient (discharge prescription) order
    assert aripiprazole["category"][0]["coding"][0]["code"] == "outpatient"
    # RXE-2: RxNorm, and the NDC with dashes in its 11-digit form (the sent code kept after)
    assert (RXNORM, "352309") in _codes(aripiprazole["medicationCodeableConcept"])
    assert (NDC, "59148000813") in _codes(aripiprazole["medicationCodeableConcept"])
    [dosage] = aripiprazole["dosageInstruction"]
    assert dosage["doseAndRate"][0]["doseQuantity"] == {
        "value": 10,
        "unit": "milligram",
        "system": UCUM,
        "code": "mg",
    }  # RXE-3 / RXE-5
    assert dosage["text"] == "Take 1 tablet by mouth once daily"  # RXE-7
    repeat = dosage["timing"]["repeat"]  # TQ1-3 QD, TQ1-4 0900, TQ1-7/8
    assert (repeat["frequency"], repeat["period"], repeat["periodUnit"]) == (1, 1, "d")
    assert repeat["timeOfDay"] == ["09:00:00"]
    assert repeat["boundsPeriod"] == {"start": "2026-11-20", "end": "2026-12-20"}
    # RXR-1: SNOMED CT route from the v2-0162 map, the v2 code kept
    assert _codes(dosage["route"]) == {(SCT, "26643006"), (V2_0162, "PO")}
    supply = aripiprazole["dispenseRequest"]
    assert supply["quantity"]["value"] == 30 and supply["numberOfRepeatsAllowed"] == 2
    assert supply["expectedSupplyDuration"] == {
        "value": 30,
        "unit": "days",
        "system": UCUM,
        "code": "d",
    }  # TQ1-6
    assert suboxone["dosageInstruction"][0]["timing"]["repeat"]["frequency"] == 2  # BID
    assert (SCT, "37839007") in _codes(suboxone["dosageInstruction"][0]["route"])  # sublingual


def test_rde_o01_v23_takes_timing_and_supply_from_the_tq_field_and_keeps_a_local_code() -> None:
    [order] = _created("rde_o01_v23.hl7")["MedicationRequest"]
    concept = order["medicationCodeableConcept"]
    assert concept["text"] == "olanzapine 5 mg tablet"
    assert concept["coding"][0]["code"] == "OLANZ5"
    assert concept["coding"][0]["system"].endswith("coding-system:99MERCYRX")
    [dosage] = order["dosageInstruction"]
    assert dosage["timing"]["repeat"]["periodUnit"] == "h"  # RXE-1.2 Q12H
    assert dosage["timing"]["repeat"]["period"] == 12
    assert dosage["doseAndRate"][0]["doseQuantity"]["code"] == "mg"  # "MG" sent without a system
    assert order["dispenseRequest"]["expectedSupplyDuration"]["value"] == 14  # RXE-1.3 D14


# --- RDS: dispenses ------------------------------------------------------------------------


def test_rds_o13_each_rxd_is_a_dispense_of_the_order_named_by_orc() -> None:
    created = _created("rds_o13_two_fills.hl7")
    orders = {o["identifier"][0]["value"]: o for o in created["MedicationRequest"]}
    assert set(orders) == {"ORD88120", "ORD88121"}  # repeated ORC groups
    dispenses = created["MedicationDispense"]
    assert len(dispenses) == 3  # the second order has two RXD
    first = dispenses[0]
    assert first["status"] == "completed"
    assert first["whenHandedOver"].startswith("2026-11-21T10:10:00")  # RXD-3
    assert first["quantity"]["value"] == 30  # RXD-4
    assert (NDC, "59148000813") in _codes(first["medicationCodeableConcept"])  # bare 11 digits
    assert first["type"]["coding"][0]["code"] == "N"  # RXD-33
    assert (V2_0162, "PO") in _codes(first["dosageInstruction"][0]["route"])
    assert "daysSupply" not in first  # v2 RXD has no days-supply field
    # the same ORC-2 keys the dispense's order and the RDE's: same fullUrl, same resource
    rde = convert((DATA / "rde_o11_discharge.hl7").read_bytes()).bundle
    rde_order_urls = {
        e["fullUrl"] for e in rde["entry"] if e["resource"]["resourceType"] == "MedicationRequest"
    }
    assert {d["authorizingPrescription"][0]["reference"] for d in dispenses} <= rde_order_urls
    assert len({d["identifier"][0]["value"] for d in dispenses}) == 3


def test_rds_o01_v23_without_rxr_or_tq1_maps_the_dispense() -> None:
    created = _created("rds_o01_v23_part2.hl7")
    [dispense] = created["MedicationDispense"]
    assert (RXNORM, "1010600") in _codes(dispense["medicationCodeableConcept"])
    assert dispense["quantity"]["value"] == 7 and "dosageInstruction" not in dispense
    [order] = created["MedicationRequest"]
    assert order["dispenseRequest"]["expectedSupplyDuration"]["value"] == 7  # RXE-1.3 D7


def test_a_dispense_without_an_order_number_or_a_code_is_still_kept() -> None:
    created = _created(
        _message("RXD|1|^Sertraline 50mg tab|20261121101000|30|TAB"),
    )
    [order] = created["MedicationRequest"]
    [dispense] = created["MedicationDispense"]
    assert dispense["medicationCodeableConcept"] == {"text": "Sertraline 50mg tab"}
    assert order["medicationCodeableConcept"] == {"text": "Sertraline 50mg tab"}
    assert order["identifier"][0]["system"] == "urn:ietf:rfc:3986"  # derived key


def test_ndc_forms_are_normalised_to_eleven_digits() -> None:
    assert normalise_ndc("0002-7597-30") == "00002759730"  # 4-4-2
    assert normalise_ndc("12496-120-03") == "12496012003"  # 5-3-2
    assert normalise_ndc("59148-0008-1") == "59148000801"  # 5-4-1
    assert normalise_ndc("59148000813") == "59148000813"
    assert normalise_ndc("5914800081") == "5914800081"  # bare 10 digits: ambiguous, as sent
    assert normalise_ndc("ABC-1") is None and normalise_ndc("123") is None


# --- RAS: administrations -----------------------------------------------------------------


def test_ras_o17_long_acting_injection_is_an_administration_of_its_order() -> None:
    created = _created("ras_o17_lai.hl7")
    [order] = created["MedicationRequest"]
    [given] = created["MedicationAdministration"]
    assert given["status"] == "completed"  # RXA-20 CP
    assert given["effectiveDateTime"].startswith("2026-12-18T09:20:00")  # RXA-3 = RXA-4
    assert given["dosage"]["dose"]["value"] == 400  # RXA-6/7
    assert (SCT, "78421000") in _codes(given["dosage"]["route"])  # RXR-1 IM
    assert given["dosage"]["site"]["coding"][0]["code"] == "LG"  # RXR-2
    assert given["performer"][0]["actor"]["reference"].startswith("urn:uuid:")  # RXA-10
    assert given["context"]["reference"].startswith("urn:uuid:")  # PV1-19 visit
    assert "encounter" not in order  # the clinic visit is not where it was ordered
    timing = order["dosageInstruction"][0]["timing"]["repeat"]  # TQ1-3 Q4W
    assert (timing["period"], timing["periodUnit"]) == (4, "wk")


def test_ras_o01_v23_refused_dose_is_not_done() -> None:
    given = _created("ras_o01_v23_methadone.hl7")["MedicationAdministration"]
    assert [g["status"] for g in given] == ["completed", "not-done"]  # RXA-20 CP, RE
    assert given[0]["dosage"]["dose"]["code"] == "mg"


def test_deleted_administration_is_entered_in_error_and_unknown_amount_is_left_out() -> None:
    rxa = "RXA|0|1|20261218092000||1719649^aripiprazole ER inj^RXNORM|999|mg|||||||||||||CP|D"
    [given] = _created(_message("ORC|RE|ORD1^EPIC", rxa, mtype="RAS^O17^RAS_O17"))[
        "MedicationAdministration"
    ]
    assert given["status"] == "entered-in-error" and "dosage" not in given


# --- refused ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("segments", "mtype", "error", "where"),
    [
        (["ORC|NW|O1^EPIC", "RXE||^^|10||mg"], "RDE^O11^RDE_O11", RequiredFieldMissing, "RXE^1^2"),
        (["ORC|NW|O1^EPIC", "TQ1|1||QD"], "RDE^O11^RDE_O11", SegmentSequenceError, "RXE^1"),
        (["ORC|RE|O1^EPIC", "RXD|1|123^X^RXNORM|20261340"], "RDS^O13", DataTypeError, "RXD^1^3"),
        (["ORC|RE|O1^EPIC"], "RDS^O13^RDS_O13", SegmentSequenceError, "RXD^1"),
        (
            ["ORC|RE|O1^EPIC", "RXD|1|1^X^RXNORM|20261121"],
            "RDS^O13^RDE_O11X",
            UnsupportedMessage,
            "",
        ),
        (["ORC|RE|O1^EPIC", "RXA|0|1|20261121|"], "RAS^O17^RAS_O17", RequiredFieldMissing, ""),
        (["RXE||1^X^RXNORM"], "RDE^O13", UnsupportedEvent, "MSH^1^9^2"),
    ],
)
def test_broken_pharmacy_messages_are_refused_with_the_place_named(
    segments: list[str], mtype: str, error: type[Exception], where: str
) -> None:
    with pytest.raises(error) as caught:
        convert(_message(*segments, mtype=mtype))
    assert caught.value.location.startswith(where)  # type: ignore[attr-defined]
    ack = build_ack(_message(*segments, mtype=mtype), error=caught.value)  # type: ignore[arg-type]
    assert "MSA|A" in ack and "|CTRL-1" in ack and "ERR|" in ack


def test_a_pharmacy_message_without_pid_is_refused() -> None:
    raw = b"MSH|^~\\&|RX|PHARM|GW|GW|20261121||RDS^O13|C2|P|2.5\rORC|RE|O1\rRXD|1|1^X^RXNORM|2026"
    with pytest.raises(SegmentSequenceError):
        convert(raw)


def test_order_groups_are_bounded() -> None:
    groups = [f"ORC|NW|O{i}^EPIC\rRXE||1^X^RXNORM|1" for i in range(MAX_ORDERS + 1)]
    with pytest.raises(MessageTooLarge) as caught:
        convert(_message(*groups, mtype="RDE^O11^RDE_O11"))
    assert str(MAX_ORDERS) in caught.value.reason and caught.value.ack_code == "AR"


# --- the maps are data ------------------------------------------------------------------------


def test_a_senders_map_can_name_its_days_supply_field(tmp_path: Path) -> None:
    """v2 has no days-supply field; a sender that sends one (here in ZRX-2) says so in its map."""
    builtin = DATA.parents[3] / "mappings" / "hl7v2" / "segment-rxd-to-medicationdispense.json"
    doc = json.loads(builtin.read_text())
    doc["group"].append(
        {
            "source": "urn:fhir-gateway:hl7v2:segment:ZRX",
            "target": "http://hl7.org/fhir/StructureDefinition/MedicationDispense",
            "element": [
                {
                    "code": "ZRX-2",
                    "target": [
                        {
                            "code": "daysSupply",
                            "equivalence": "equivalent",
                            "dependsOn": [{"property": "datatype", "value": "days"}],
                        }
                    ],
                }
            ],
        }
    )
    (tmp_path / "segment-rxd-to-medicationdispense.json").write_text(json.dumps(doc))
    raw = _message("ORC|RE|O1^EPIC", "RXD|1|1^X^RXNORM|20261121|30|TAB", "ZRX|1|30")
    [dispense] = _created(raw, mappings_dir=tmp_path)["MedicationDispense"]
    assert dispense["daysSupply"] == {"value": 30, "unit": "days", "system": UCUM, "code": "d"}
    assert "daysSupply" not in _created(raw)["MedicationDispense"][0]


def test_repeat_patterns_of_table_0335() -> None:
    assert repeat_pattern("TID") == ({"frequency": 3, "period": 1, "periodUnit": "d"}, False)
    assert repeat_pattern("Q6H") == ({"frequency": 1, "period": 6, "periodUnit": "h"}, False)
    assert repeat_pattern("Q2W") == ({"frequency": 1, "period": 2, "periodUnit": "wk"}, False)
    assert repeat_pattern("Q1L") == ({"frequency": 1, "period": 1, "periodUnit": "mo"}, False)
    assert repeat_pattern("Q4HPRN") == ({"frequency": 1, "period": 4, "periodUnit": "h"}, True)
    assert repeat_pattern("PRN") == (None, True)
    assert repeat_pattern("WHENEVER") == (None, False)
    assert tq_duration("D30") == {"value": 30, "unit": "days", "system": UCUM, "code": "d"}
    assert tq_duration("INDEF") is None


def test_set_path_keeps_the_first_value_and_appends_new_items() -> None:
    body: dict[str, Any] = {}
    assert set_path(body, "dosageInstruction[0].route", "a")
    assert not set_path(body, "dosageInstruction[0].route", "b")
    set_path(body, "note[+]", {"text": "x"})
    set_path(body, "note[+]", {"text": "y"})
    assert body == {"dosageInstruction": [{"route": "a"}], "note": [{"text": "x"}, {"text": "y"}]}
