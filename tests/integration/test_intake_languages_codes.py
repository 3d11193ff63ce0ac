"""Real-world discharges over POST /hl7v2 (issue #16 items 1-3, #15 item 5): languages sent as
ISO 639-2 codes reach the partners who speak them, text-only diagnoses and visits without PV1
are accepted with a warning in the ACK, and FHIR doors store languages in the same form.

The messages are shaped like Epic's ADT^A03 from Memorial Medical Center, Springfield, IL."""

from __future__ import annotations

import copy
from typing import Any

import orjson
from careplan_helpers import Gateway
from intake_helpers import DAVINCI

from fhir_gateway.workflow._partners import eligible_organizations

HL7 = {"content-type": "x-application/hl7-v2+er7"}
BCP47 = "urn:ietf:bcp:47"
ISO639_2 = "http://terminology.hl7.org/CodeSystem/iso639-2"


def discharge(
    control: str,
    *,
    language: str,
    mrn: str = "E4412873",
    dg1: tuple[str, ...] = ("F33.2^Major depressive disorder, recurrent, moderate^I10",),
    version: str = "2.5.1",
    pv1: bool = True,
) -> bytes:
    segs = [
        f"MSH|^~\\&|EPIC|MEMORIAL|GATEWAY|CARECOORD|20250310140502||ADT^A03^ADT_A03|{control}|P|{version}",
        "EVN|A03|20250310140500|||PATELA^PATEL^ANIL",
        f"PID|1||{mrn}^^^MEMORIAL^MR||GARCIA^MARIA^L||19790412|F|||1907 S 5th St^^Springfield^IL^62703^USA^H"
        f"||^PRN^PH^^^217^5550142||{language}|M",
        "PD1|||MEMORIAL MEDICAL CENTER",
    ]
    if pv1:
        segs.append(
            "PV1|1|I|4W^412^A^MEMORIAL||||1730^PATEL^ANIL^^^DR^MD|||PSY||||1|||1730^PATEL^ANIL^^^DR^MD|IP|"
            f"V{mrn}^^^MEMORIAL^VN|||||||||||||||||01|||||||20250301093000|20250310133000"
        )
    segs.extend(f"DG1|{i}||{d}||20250301|F" for i, d in enumerate(dg1, start=1))
    return "\r".join(segs).encode()


def post(gateway: Gateway, raw: bytes) -> list[list[str]]:
    answer = gateway.client.post("/hl7v2", content=raw, headers=HL7)
    assert answer.status_code == 200, answer.text
    return [s.split("|") for s in answer.text.split("\r") if s]


def owners(gateway: Gateway) -> dict[str, str | None]:
    requests = gateway.requests_of(gateway.plan())
    return {
        title: gateway.task_of(r).get("owner", {}).get("reference") for title, r in requests.items()
    }


def test_patient_sent_with_iso639_2_english_is_routed_to_springfield_partners(
    gateway: Gateway,
) -> None:
    ack = post(gateway, discharge("884213", language="eng^English^ISO639"))
    assert [s[:3] for s in ack if s[0] == "MSA"] == [["MSA", "AA", "884213"]]
    assert not [s for s in ack if s[0] == "ERR"]
    found = owners(gateway)
    assert found["Psychiatry follow-up visit within 7 days"] == "Organization/springfield-cmhc"
    assert found["Psychotherapy intake within 14 days"] == "Organization/springfield-cmhc"
    assert found["Peer support group"] == "Organization/nami-central-il"
    assert None not in found.values(), found
    # a partner who claims such a referral is eligible for it (the claim asks the same match)
    therapy = gateway.requests_of(gateway.plan())["Psychotherapy intake within 14 days"]
    eligible = [org for org, _ in gateway.database.read(eligible_organizations, therapy)]
    assert eligible == ["Organization/springfield-cmhc"]  # Lincoln: full; Clinica: Spanish only
    [patient] = gateway.all("Patient")
    assert patient["communication"][0]["language"]["coding"] == [
        {"system": BCP47, "code": "en", "display": "English"},
        {"system": ISO639_2, "code": "eng", "display": "English"},
    ]


def test_spanish_speaking_patient_sent_as_spa_gets_the_spanish_speaking_therapist(
    gateway: Gateway,
) -> None:
    post(gateway, discharge("884214", language="spa^Spanish^ISO639"))
    found = owners(gateway)
    assert found["Psychotherapy intake within 14 days"] == "Organization/clinica-esperanza"
    assert (
        found["Psychiatry follow-up visit within 7 days"] == "Organization/springfield-cmhc"
    )  # speaks es too
    assert found["Peer support group"] is None  # NAMI runs its groups in English only
    assert sum(owner is None for owner in found.values()) == 1, found


def test_text_only_diagnosis_is_stored_as_text_and_accepted_with_a_warning(
    gateway: Gateway,
) -> None:
    ack = post(
        gateway,
        discharge(
            "884215",
            language="eng^English^ISO639",
            dg1=("F33.2^Major depressive disorder, recurrent, moderate^I10", "^Alcohol dependence"),
        ),
    )
    assert [s[:3] for s in ack if s[0] == "MSA"] == [["MSA", "AA", "884215"]]
    [err] = [s for s in ack if s[0] == "ERR"]
    assert err[2] == "DG1^2^3^1" and err[3].startswith("101^") and err[4] == "W"
    assert "Alcohol dependence" in err[8]
    codes = sorted(
        (c["code"].get("text"), len(c["code"].get("coding", []))) for c in gateway.all("Condition")
    )
    assert codes == [
        ("Alcohol dependence", 0),
        ("Major depressive disorder, recurrent, moderate", 1),
    ]
    assert gateway.plan()["addresses"]  # the coded diagnosis still makes its care plan


def test_text_only_diagnosis_in_v23_is_told_in_msa3(gateway: Gateway) -> None:
    ack = post(
        gateway, discharge("884216", language="eng", version="2.3", dg1=("^ALCOHOL DEPENDENCE",))
    )
    [msa] = [s for s in ack if s[0] == "MSA"]
    assert msa[1:3] == ["AA", "884216"] and "ALCOHOL DEPENDENCE" in msa[3] and "no code" in msa[3]
    assert not [s for s in ack if s[0] == "ERR"]
    assert [c["code"] for c in gateway.all("Condition")] == [{"text": "ALCOHOL DEPENDENCE"}]


def test_discharge_without_pv1_is_accepted_with_a_warning(gateway: Gateway) -> None:
    ack = post(gateway, discharge("884217", language="eng", pv1=False))
    assert [s[:3] for s in ack if s[0] == "MSA"] == [["MSA", "AA", "884217"]]
    [err] = [s for s in ack if s[0] == "ERR"]
    assert err[3].startswith("100^") and err[4] == "W" and "no Encounter" in err[8]
    assert gateway.all("Encounter") == [] and len(gateway.all("Patient")) == 1


def test_rest_and_fhir_notifications_store_languages_as_bcp47(gateway: Gateway) -> None:
    client = gateway.client
    created = client.post(
        "/Patient",
        json={
            "resourceType": "Patient",
            "name": [{"family": "Gowda", "given": ["Ravi"]}],
            "communication": [
                {"language": {"coding": [{"system": BCP47, "code": "kan"}], "text": "Kannada"}}
            ],
        },
        headers={"content-type": "application/fhir+json"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["communication"][0]["language"]["coding"] == [
        {"system": BCP47, "code": "kn", "display": "Kannada"},
        {"system": ISO639_2, "code": "kan"},
    ]

    body: dict[str, Any] = orjson.loads(
        (DAVINCI / "discharge-notification-message-bundle-01.json").read_bytes()
    )
    body = copy.deepcopy(body)
    patient = next(
        e["resource"] for e in body["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    patient["communication"] = [
        {"language": {"coding": [{"system": BCP47, "code": "spa", "display": "Spanish"}]}}
    ]
    answer = client.post(
        "/$process-message", json=body, headers={"content-type": "application/fhir+json"}
    )
    assert answer.status_code == 200, answer.text
    stored = next(p for p in gateway.all("Patient") if p["name"][0]["family"] == "Halvorson124")
    assert [c["code"] for c in stored["communication"][0]["language"]["coding"]] == ["es", "spa"]
