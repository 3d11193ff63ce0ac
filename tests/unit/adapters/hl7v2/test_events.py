"""Each event's semantics, as the gateway will apply them (Encounter status, merges, deletes)."""

from __future__ import annotations

import pytest
from hl7v2_helpers import PID, adt, patch_for, resources

from adapters.hl7v2 import UnsupportedMessage, convert


def _encounter_status(event: str) -> str:
    return resources(convert(adt(event)).bundle, "Encounter")[0]["status"]


@pytest.mark.parametrize(
    ("event", "status"),
    [
        ("A01", "in-progress"),
        ("A02", "in-progress"),
        ("A03", "finished"),
        ("A04", "arrived"),
        ("A05", "planned"),
        ("A06", "in-progress"),
        ("A07", "in-progress"),
        ("A11", "cancelled"),
        ("A12", "in-progress"),
        ("A13", "in-progress"),
    ],
)
def test_event_sets_encounter_status(event, status):
    assert _encounter_status(event) == status
    ops = patch_for(convert(adt(event)).bundle, "Encounter")
    assert {"type": "add", "path": "Encounter", "name": "status", "value": status} in ops


def test_a08_update_leaves_status_alone():
    ops = patch_for(convert(adt("A08")).bundle, "Encounter")
    assert not [op for op in ops if op.get("name") == "status" or op["path"] == "Encounter.status"]


def test_a01_then_a03_target_one_encounter():
    a01, a03 = convert(adt("A01")).bundle, convert(adt("A03", end="20240105090000+0100")).bundle

    def url(b):
        return [e["request"] for e in b["entry"] if e["resource"]["resourceType"] == "Encounter"][0]

    assert (
        url(a01)["ifNoneExist"]
        == url(a03)["ifNoneExist"]
        == "identifier=urn:fhir-gateway:hl7v2:assigning-authority:HOSP|V100"
    )
    ops = patch_for(a03, "Encounter")
    assert {
        "type": "add",
        "path": "Encounter.period.where(end.empty())",
        "name": "end",
        "value": "2024-01-05T09:00:00+01:00",
    } in ops


def test_a03_discharge_disposition_and_location_completed():
    enc = resources(convert(adt("A03")).bundle, "Encounter")[0]
    assert enc["hospitalization"]["dischargeDisposition"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/discharge-disposition",
        "code": "home",
    }
    assert enc["location"][0]["status"] == "completed"


def test_a13_cancel_discharge_removes_end_and_disposition():
    ops = patch_for(convert(adt("A13", end="20240105090000+0100")).bundle, "Encounter")
    paths = [op["path"] for op in ops if op["type"] == "delete"]
    assert (
        "Encounter.period.end" in paths
        and "Encounter.hospitalization.dischargeDisposition" in paths
    )
    assert not [
        op
        for op in ops
        if op["type"] == "add" and op.get("name") in ("end", "dischargeDisposition")
    ]


def test_a02_transfer_marks_prior_location_completed_and_a12_removes_it():
    pv1 = "PV1|1|I|W2^202^B^FAC|||W1^101^A^FAC||||||||||||||V100^^^HOSP^VN\r"
    enc = resources(convert(adt("A02", pv1=pv1)).bundle, "Encounter")[0]
    assert [
        (loc["status"], loc["location"]["identifier"]["value"] != "") for loc in enc["location"]
    ] == [
        ("completed", True),
        ("active", True),
    ]
    ops = patch_for(convert(adt("A12", pv1=pv1)).bundle, "Encounter")
    prior = enc["location"][0]["location"]["identifier"]["value"]
    assert {
        "type": "delete",
        "path": f"Encounter.location.where(location.identifier.value='{prior}')",
    } in ops


@pytest.mark.parametrize("event", ["A28", "A31"])
def test_person_events_update_patient_only(event):
    bundle = convert(adt(event)).bundle
    assert resources(bundle, "Patient") and not resources(bundle, "Encounter")


def test_a29_marks_patient_inactive():
    assert resources(convert(adt("A29")).bundle, "Patient")[0]["active"] is False


def test_a40_merge_links_survivor_and_replaced_patient():
    text = adt("A40", pv1="", extra="MRG|OLD7^^^HOSP^MR\r")
    survivor, replaced = resources(convert(text).bundle, "Patient")
    assert survivor["link"][0]["type"] == "replaces"
    assert survivor["link"][0]["other"]["identifier"]["value"] == "OLD7"
    assert replaced["identifier"][0]["value"] == "OLD7" and replaced["active"] is False
    assert replaced["link"][0]["type"] == "replaced-by"
    assert replaced["link"][0]["other"]["identifier"]["value"] == "MRN1"


def test_non_adt_message_is_unsupported():
    text = adt().replace("ADT^A01^ADT_A01", "ORU^R01^ORU_R01")
    with pytest.raises(UnsupportedMessage) as exc:
        convert(text)
    assert (exc.value.code, exc.value.segment, exc.value.field, exc.value.ack_code) == (
        200,
        "MSH",
        9,
        "AR",
    )


def test_null_value_deletes_and_empty_field_leaves_alone():
    pid = PID.replace("|19800102|F|", '|""||')  # birth date "" (delete), sex empty (no change)
    ops = patch_for(convert(adt("A08", pid=pid)).bundle, "Patient")
    assert {"type": "delete", "path": "Patient.birthDate"} in ops
    assert not [op for op in ops if op.get("name") == "birthDate"]
    assert not [op for op in ops if "gender" in op["path"] or op.get("name") == "gender"]


def test_identifiers_of_other_authorities_are_kept():
    ops = patch_for(convert(adt("A08")).bundle, "Patient")
    deletes = [op["path"] for op in ops if op["type"] == "delete" and "identifier" in op["path"]]
    assert deletes == [
        "Patient.identifier.where(system='urn:fhir-gateway:hl7v2:assigning-authority:HOSP')",
        "Patient.identifier.where(system='http://hl7.org/fhir/sid/us-ssn')",
    ]


def test_sparse_a08_does_not_touch_what_it_did_not_carry():
    pid = "PID|1||MRN1^^^HOSP^MR||DOE^JANE\r"
    ops = patch_for(convert(adt("A08", pid=pid, pv1="")).bundle, "Patient")
    touched = {op.get("name") or op["path"].split(".")[1].split("(")[0] for op in ops}
    assert touched == {"identifier", "name"}


def test_mr_repeat_is_the_patient_key():
    pid = "PID|1||X9^^^OTHER^PI~MRN1^^^2.16.840.1.113883.19.5^MR||DOE^JANE\r"
    result = convert(adt(pid=pid))
    assert result.patient_key == "urn:oid:2.16.840.1.113883.19.5|MRN1"


def test_diagnosis_coding_systems_and_encounter_diagnosis():
    dg1 = "DG1|1||F32.9^Depression^I10C|||A|||||||||1\rDG1|2||35489007^Depressive disorder^SCT|||F|||||||||2\r"
    bundle = convert(adt("A03", extra=dg1)).bundle
    conditions = resources(bundle, "Condition")
    assert [c["code"]["coding"][0]["system"] for c in conditions] == [
        "http://hl7.org/fhir/sid/icd-10-cm",
        "http://snomed.info/sct",
    ]
    assert all(c["category"][0]["coding"][0]["code"] == "encounter-diagnosis" for c in conditions)
    diag = resources(bundle, "Encounter")[0]["diagnosis"]
    assert [(d["rank"], d["use"]["coding"][0]["code"]) for d in diag] == [(1, "AD"), (2, "DD")]
