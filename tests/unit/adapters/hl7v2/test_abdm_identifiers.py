"""ABDM identifiers in HL7 v2 from Indian hospital systems: PID-3 repeats whose assigning authority
assigns an ABHA number or address (and MSH-4 with a Health Facility Registry id) go under the
ABDM systems, checked and normalised; a malformed one is kept under the sender's own authority and
the sender hears of it; other countries' senders are left as they were."""

from __future__ import annotations

from typing import Any

from hl7v2_helpers import resources

from adapters.abdm import AbdmSystems
from adapters.hl7v2 import ConvertOptions, SenderProfile, build_ack, convert

ABHA, ADDRESS, HFR = (
    "https://healthid.ndhm.gov.in",
    "http://fhir-gateway.org/fhir/sid/abha-address",
    "https://facility.ndhm.gov.in",
)
LOCAL = "urn:fhir-gateway:hl7v2:assigning-authority:"
AUTHORITIES = {"ABHA": "abha", "PHR": "abha", "HEALTHID": "abha", "HFR": "hfr"}
INDIA = ConvertOptions(
    default_sender=SenderProfile(
        zone="Asia/Kolkata", country="IN", abdm=AbdmSystems(), abdm_authorities=AUTHORITIES
    )
)
US = ConvertOptions(default_sender=SenderProfile(zone="America/Chicago", country="US"))


def message(pid3: str, *, facility: str = "SPANDANA^IN2910004512^HFR") -> str:
    """An A01 in the style of an Indian hospital information system (v2.5.1, OpenMRS-based)."""
    return (
        "\r".join(
            [
                f"MSH|^~\\&|BAHMNI|{facility}|FHIRGW|FHIRGW|20261201093000||ADT^A01^ADT_A01|SPD000231|P|2.5.1",
                "EVN|A01|20261201093000",
                f"PID|1||{pid3}||Gowda^Meena^^^^^L||19910807|F|||14 1st Cross^Jayanagar^Bengaluru^KA^560011^IND^H||^PRN^CP^^91^^9845011223||kan",
                "PV1|1|I|PSY-W^12^1^SPANDANA||||KMC5512^Iyer^Kavitha^^^Dr^MD|||PSY|||||||||IP261201007^^^SPANDANA^VN|||||||||||||||||||||||||20261201090000",
            ]
        )
        + "\r"
    )


def identifiers(result: Any) -> dict[str, str]:
    [patient] = resources(result.bundle, "Patient")
    return {i["value"]: i.get("system", "") for i in patient["identifier"]}


def test_abha_number_and_address_repeats_go_under_the_abdm_systems_normalised():  # type: ignore[no-untyped-def]
    pid3 = "GAN100234^^^SPANDANA^MR~91441099887766^^^ABHA^NH~Meena.Gowda@ABDM^^^PHR"
    result = convert(message(pid3), options=INDIA)
    assert identifiers(result) == {
        "GAN100234": f"{LOCAL}SPANDANA",
        "91-4410-9988-7766": ABHA,
        "meena.gowda@abdm": ADDRESS,
    }
    assert result.ack_warnings == []


def test_the_mr_repeat_stays_the_match_key_whatever_comes_first():  # type: ignore[no-untyped-def]
    result = convert(message("91-4410-9988-7766^^^ABHA^NH~GAN100234^^^SPANDANA^MR"), options=INDIA)
    [entry] = [e for e in result.bundle["entry"] if e["request"].get("url") == "Patient"]
    assert entry["request"]["ifNoneExist"] == f"identifier={LOCAL}SPANDANA|GAN100234"


def test_a_malformed_abha_number_is_kept_under_the_senders_authority_and_told():  # type: ignore[no-untyped-def]
    result = convert(message("GAN100234^^^SPANDANA^MR~9144109988776^^^ABHA^NH"), options=INDIA)
    assert identifiers(result)["9144109988776"] == f"{LOCAL}ABHA"
    [warning] = result.ack_warnings
    assert (warning.segment, warning.field) == ("PID", 3) and "ABHA number" in warning.reason
    assert "9144109988776" not in warning.reason  # identifiers stay out of warnings and logs
    ack = build_ack(result.message, "AA", warnings=result.ack_warnings)
    assert "ERR|" in ack and "|W|" in ack


def test_an_abdm_system_sent_as_a_uri_is_checked_too():  # type: ignore[no-untyped-def]
    pid3 = f"GAN100234^^^SPANDANA^MR~91 4410 9988 7766^^^&{ABHA}&URI^NH"
    assert identifiers(convert(message(pid3), options=INDIA))["91-4410-9988-7766"] == ABHA


def test_the_sending_facilitys_registry_id_identifies_its_organization():  # type: ignore[no-untyped-def]
    result = convert(message("GAN100234^^^SPANDANA^MR"), options=INDIA)
    ops = [
        e["resource"]
        for e in result.bundle["entry"]
        if e["request"]["method"] == "PATCH" and e["request"]["url"].startswith("Organization?")
    ]
    assert '"IN2910004512"' in str(ops).replace("'", '"') and HFR in str(ops)
    bad = convert(
        message("GAN100234^^^SPANDANA^MR", facility="SPANDANA^IN29100^HFR"), options=INDIA
    )
    assert any(w.segment == "MSH" and w.field == 4 for w in bad.ack_warnings)


def test_a_us_sender_keeps_its_abha_named_authority_as_it_was():  # type: ignore[no-untyped-def]
    result = convert(message("GAN100234^^^SPANDANA^MR~9144^^^ABHA^NH"), options=US)
    assert identifiers(result)["9144"] == f"{LOCAL}ABHA" and result.ack_warnings == []
