"""PID-15 languages, DG1/CWE coding-system names, ICD-10 dots, text-only diagnoses and visit
events without PV1, as vendors send them (real-world discharges, issue #16)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hl7v2_helpers import patch_for, resources
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.hl7v2 import ConvertOptions, SenderProfile, build_ack, convert

BCP47 = "urn:ietf:bcp:47"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
US = ConvertOptions(default_sender=SenderProfile(zone="America/Chicago", country="US"))
INDIA = ConvertOptions(default_sender=SenderProfile(zone="Asia/Kolkata", country="IN"))


def message(
    *,
    language: str = "",
    dg1: tuple[str, ...] = (),
    version: str = "2.5.1",
    event: str = "A03",
    pv1: bool = True,
    sender: str = "EPIC|MEMORIAL",
) -> str:
    """An Epic-style discharge from a Springfield, IL hospital."""
    app, facility = sender.split("|")
    segs = [
        f"MSH|^~\\&|{app}|{facility}|GATEWAY|CARECOORD|20250310140502||ADT^{event}^ADT_A03|884213|P|{version}",
        f"EVN|{event}|20250310140500",
        "PID|1||E4412873^^^MEMORIAL^MR||GARCIA^MARIA^L||19790412|F|||1907 S 5th St^^Springfield^IL^62703^USA^H"
        f"||^PRN^PH^^^217^5550142||{language}|M",
    ]
    if pv1:
        segs.append(
            "PV1|1|I|4W^412^A^MEMORIAL||||1730^PATEL^ANIL^^^DR^MD|||PSY||||1|||1730^PATEL^ANIL^^^DR^MD|IP|"
            "V88123^^^MEMORIAL^VN|||||||||||||||||01|||||||20250301093000|20250310133000"
        )
    segs.extend(f"DG1|{i}|{seg}" for i, seg in enumerate(dg1, start=1))
    return "\r".join(segs) + "\r"


def language_of(result: Any) -> dict[str, Any]:
    ops = [op for op in patch_for(result.bundle, "Patient") if op.get("name") == "communication"]
    assert len(ops) == 1, ops
    parts = {p["name"]: next(v for k, v in p.items() if k != "name") for p in ops[0]["value"]}
    assert parts["preferred"] is True
    return parts["language"]


def conditions(result: Any) -> list[dict[str, Any]]:
    return [c["code"] for c in resources(result.bundle, "Condition")]


# -- languages -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pid15", "tag", "original"),
    [
        (
            "eng^English^ISO639",
            "en",
            {"system": "http://terminology.hl7.org/CodeSystem/iso639-2", "code": "eng"},
        ),
        (
            "spa^Spanish^ISO6392",
            "es",
            {"system": "urn:fhir-gateway:hl7v2:coding-system:ISO6392", "code": "spa"},
        ),
        (
            "kan^Kannada^HL70296",
            "kn",
            {"system": "http://terminology.hl7.org/CodeSystem/v2-0296", "code": "kan"},
        ),
        (
            "HIN^Hindi",
            "hi",
            {"system": "http://terminology.hl7.org/CodeSystem/v2-0296", "code": "HIN"},
        ),
        (
            "ger^German^ISO639",
            "de",
            {"system": "http://terminology.hl7.org/CodeSystem/iso639-2", "code": "ger"},
        ),
        ("deu", "de", {"system": "http://terminology.hl7.org/CodeSystem/v2-0296", "code": "deu"}),
        (
            "ENGLISH^English",
            "en",
            {"system": "http://terminology.hl7.org/CodeSystem/v2-0296", "code": "ENGLISH"},
        ),
    ],
)
def test_pid15_becomes_a_bcp47_tag_and_keeps_the_senders_code(
    pid15: str, tag: str, original: dict[str, str]
) -> None:
    result = convert(message(language=pid15), options=US)
    language = language_of(result)
    assert language["coding"][0]["system"] == BCP47 and language["coding"][0]["code"] == tag
    kept = [{k: c[k] for k in ("system", "code")} for c in language["coding"][1:]]
    assert kept == [original]
    assert not result.ack_warnings


def test_pid15_already_bcp47_is_one_coding() -> None:
    language = language_of(convert(message(language="en^English^ISO639"), options=US))
    assert language["coding"] == [{"system": BCP47, "code": "en", "display": "English"}]
    assert language["text"] == "English"


def test_pid15_text_only_is_recognised_by_name() -> None:
    language = language_of(convert(message(language="^Kannada"), options=INDIA))
    assert language["coding"] == [{"system": BCP47, "code": "kn", "display": "Kannada"}]
    assert language["text"] == "Kannada"


def test_unknown_language_is_kept_as_text_and_the_ack_warns() -> None:
    result = convert(message(language="ZZ9^^99LANG"), options=US)
    language = language_of(result)
    assert language["text"] == "ZZ9"
    assert all(c["system"] != BCP47 for c in language["coding"])
    [warning] = result.ack_warnings
    assert (warning.segment, warning.field) == ("PID", 15) and "ZZ9" in warning.reason
    ack = build_ack(result.message, "AA", warnings=result.ack_warnings)
    assert "MSA|AA|884213" in ack and "ERR||PID^1^15|103^Table value not found^HL70357|W" in ack


# -- coding systems ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "us", "india"),
    [
        ("I10C", ICD10_CM, ICD10_CM),
        ("ICD10CM", ICD10_CM, ICD10_CM),
        ("ICD-10-CM", ICD10_CM, ICD10_CM),
        ("icd-10-cm", ICD10_CM, ICD10_CM),
        ("I10", ICD10_CM, ICD10),  # ambiguous: the facility's country decides
        ("ICD10", ICD10_CM, ICD10),
        ("ICD-10", ICD10_CM, ICD10),
        ("I9", "http://hl7.org/fhir/sid/icd-9-cm", "http://hl7.org/fhir/sid/icd-9-cm"),
        ("I9C", "http://hl7.org/fhir/sid/icd-9-cm", "http://hl7.org/fhir/sid/icd-9-cm"),
        ("SCT", "http://snomed.info/sct", "http://snomed.info/sct"),
        ("LN", "http://loinc.org", "http://loinc.org"),
        # SNOMED II and local systems mean nothing public without the sender's own map
        (
            "SNM",
            "urn:fhir-gateway:hl7v2:coding-system:SNM",
            "urn:fhir-gateway:hl7v2:coding-system:SNM",
        ),
        (
            "99PSY",
            "urn:fhir-gateway:hl7v2:coding-system:99PSY",
            "urn:fhir-gateway:hl7v2:coding-system:99PSY",
        ),
    ],
)
def test_coding_system_names_map_by_the_facilitys_country(name: str, us: str, india: str) -> None:
    dg1 = f"|F32.9^Major depressive disorder, single episode^{name}||20250301|A"
    assert conditions(convert(message(dg1=(dg1,)), options=US))[0]["coding"][0]["system"] == us
    assert (
        conditions(convert(message(dg1=(dg1,)), options=INDIA))[0]["coding"][0]["system"] == india
    )


def test_v23_coding_method_in_dg1_2_follows_the_same_map() -> None:
    result = convert(
        message(
            dg1=("I10|F332^MAJOR DEPRESSIVE DISORDER, RECURRENT, MODERATE||20250301|A",),
            version="2.3",
        ),
        options=US,
    )
    assert conditions(result)[0]["coding"][0] == {
        "system": ICD10_CM,
        "code": "F33.2",
        "display": "MAJOR DEPRESSIVE DISORDER, RECURRENT, MODERATE",
    }


def test_icd10_without_dot_is_normalised_and_the_code_as_sent_is_kept() -> None:
    result = convert(
        message(dg1=("|F1020^Alcohol dependence, uncomplicated^ICD10||20250301|A",)), options=US
    )
    code = conditions(result)[0]
    assert code["coding"] == [
        {"system": ICD10_CM, "code": "F10.20", "display": "Alcohol dependence, uncomplicated"},
        {
            "system": "urn:fhir-gateway:hl7v2:coding-system:ICD10",
            "code": "F1020",
            "display": "Alcohol dependence, uncomplicated",
        },
    ]


def test_three_character_category_and_dotted_codes_are_left_alone() -> None:
    result = convert(
        message(
            dg1=("|F32^Depressive episode^I10||20250301|A", "|F32.A^Depression, unspecified^I10C")
        ),
        options=US,
    )
    assert [c["coding"] for c in conditions(result)] == [
        [{"system": ICD10_CM, "code": "F32", "display": "Depressive episode"}],
        [{"system": ICD10_CM, "code": "F32.A", "display": "Depression, unspecified"}],
    ]


def test_a_senders_own_conceptmap_maps_snm_local_systems_and_icd10(tmp_path: Path) -> None:
    """A per-sender ConceptMap in the user's mappings directory (useContext sender) wins over
    the country's and the general map, for that sender only."""
    sender_map = {
        "resourceType": "ConceptMap",
        "id": "v2-0396",
        "status": "active",
        "useContext": [
            {
                "code": {"system": "urn:fhir-gateway:usage-context", "code": "sender"},
                "valueCodeableConcept": {"coding": [{"code": "CERNER|MERCY"}]},
            }
        ],
        "group": [
            {
                "source": "http://terminology.hl7.org/CodeSystem/v2-0396",
                "target": "urn:ietf:rfc:3986",
                "element": [
                    {
                        "code": "SNM",
                        "target": [{"code": "http://snomed.info/sct", "equivalence": "equivalent"}],
                    },
                    {
                        "code": "99MRC",
                        "target": [
                            {"code": "https://mercy.example.org/dx", "equivalence": "equivalent"}
                        ],
                    },
                    {"code": "ICD10", "target": [{"code": ICD10, "equivalence": "equivalent"}]},
                ],
            }
        ],
    }
    (tmp_path / "mercy.json").write_text(json.dumps(sender_map))
    options = ConvertOptions(default_sender=SenderProfile(country="US"), mappings_dir=tmp_path)
    dg1 = (
        "|35489007^Depressive disorder^SNM",
        "|D-114^Mood disorder NOS^99MRC",
        "|F332^Recurrent depression^ICD10",
    )
    mercy = conditions(convert(message(dg1=dg1, sender="CERNER|MERCY"), options=options))
    assert [c["coding"][0]["system"] for c in mercy] == [
        "http://snomed.info/sct",
        "https://mercy.example.org/dx",
        ICD10,
    ]
    other = conditions(convert(message(dg1=dg1), options=options))
    assert [c["coding"][0]["system"] for c in other] == [
        "urn:fhir-gateway:hl7v2:coding-system:SNM",
        "urn:fhir-gateway:hl7v2:coding-system:99MRC",
        ICD10_CM,
    ]


# -- text-only diagnoses and missing PV1 ---------------------------------------------------------


def test_text_only_diagnosis_becomes_code_text_and_the_ack_warns() -> None:
    """#15 item 5: `DG1|1|I10|^Alcohol dependence` crashed with a KeyError."""
    result = convert(message(dg1=("I10|^Alcohol dependence",)), options=US)
    assert conditions(result) == [{"text": "Alcohol dependence"}]
    [warning] = result.ack_warnings
    assert (warning.segment, warning.sequence, warning.field) == ("DG1", 1, 3)
    ack = build_ack(result.message, "AA", warnings=result.ack_warnings)
    assert "MSA|AA|884213" in ack
    assert "ERR||DG1^1^3^1|101^Required field missing^HL70357|W" in ack
    assert "Alcohol dependence" in ack


def test_text_only_diagnosis_in_v23_is_told_in_msa3() -> None:
    result = convert(message(dg1=("I9|^ALCOHOL DEPENDENCE SYNDROME",), version="2.3"), options=US)
    assert conditions(result) == [{"text": "ALCOHOL DEPENDENCE SYNDROME"}]
    ack = build_ack(result.message, "AA", warnings=result.ack_warnings)
    msa = next(s for s in ack.split("\r") if s.startswith("MSA"))
    assert msa.startswith("MSA|AA|884213|") and "has no code" in msa
    assert "ERR" not in ack


def test_diagnosis_with_only_a_dg1_4_description_is_text_too() -> None:
    result = convert(message(dg1=("I10||Schizoaffective disorder",)), options=US)
    assert conditions(result) == [{"text": "Schizoaffective disorder"}]
    assert len(result.ack_warnings) == 1


def test_visit_event_without_pv1_is_flagged_and_warned() -> None:
    result = convert(message(pv1=False, event="A03"), options=US)
    assert result.no_encounter is True
    assert not resources(result.bundle, "Encounter")
    assert [w.segment for w in result.ack_warnings] == ["PV1"]
    ack = build_ack(result.message, "AA", warnings=result.ack_warnings)
    assert (
        "MSA|AA|884213" in ack
        and "|100^Segment sequence error^HL70357|W|" in ack
        and "no Encounter" in ack
    )


def test_person_event_without_pv1_is_not_warned() -> None:
    result = convert(message(pv1=False, event="A31"), options=US)
    assert result.no_encounter is False and not result.ack_warnings


# -- property: nothing a sender types in these fields makes the mapping raise ---------------------

_FIELD_TEXT = st.text(
    alphabet=st.characters(blacklist_characters="|^~\\&\r\n", blacklist_categories=("Cs",)),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(
    code=_FIELD_TEXT, text=_FIELD_TEXT, system=_FIELD_TEXT, method=_FIELD_TEXT, language=_FIELD_TEXT
)
def test_any_language_or_diagnosis_text_converts(
    code: str, text: str, system: str, method: str, language: str
) -> None:
    dg1 = f"{method}|{code}^{text}^{system}||20250301|A"
    result = convert(message(language=f"{language}^{text}^{system}", dg1=(dg1,)), options=US)
    assert result.bundle["resourceType"] == "Bundle"
    assert all(w.segment in ("PID", "DG1") for w in result.ack_warnings)
