"""Medication data are labelled as diagnoses are: a medicine for opioid or alcohol use disorder is
substance-use data, a 42 CFR Part 2 record only from a Part 2 program; tobacco is not."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_gateway import privacy

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"


def _dispense(concept: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "MedicationDispense", "medicationCodeableConcept": concept}


def _codes(labels: list[dict[str, Any]]) -> set[str]:
    return {lb["code"] for lb in labels}


@pytest.mark.parametrize(
    "concept",
    [
        {"coding": [{"system": RXNORM, "code": "1819"}]},  # buprenorphine (ingredient)
        {"coding": [{"system": ATC, "code": "N07BC02"}]},  # methadone
        {"coding": [{"system": ATC, "code": "N07BB04"}]},  # naltrexone
        {
            "coding": [
                {
                    "system": "http://hl7.org/fhir/sid/ndc",
                    "code": "12496120803",
                    "display": "SUBOXONE 8-2MG FILM",
                }
            ]
        },  # a product code: known by its brand
        {"text": "Vivitrol 380 mg IM every 4 weeks"},
    ],
)
def test_substance_use_medicines_are_part2_only_from_a_part2_sender(
    concept: dict[str, Any],
) -> None:
    assert _codes(privacy.medication_labels(_dispense(concept), part2=True)) == {
        "R",
        "ETH",
        "42CFRPart2",
        "PSY",
    }
    assert _codes(privacy.medication_labels(_dispense(concept), part2=False)) == {"ETH", "PSY"}


def test_other_medicines_nicotine_and_coded_unknowns_carry_no_label() -> None:
    for concept in (
        {"coding": [{"system": RXNORM, "code": "352309", "display": "aripiprazole 10 MG"}]},
        {"coding": [{"system": ATC, "code": "N07BA01", "display": "nicotine"}]},
    ):
        assert privacy.medication_labels(_dispense(concept), part2=True) == []


def test_an_uncoded_drug_from_a_part2_sender_stays_protected_until_coded() -> None:
    words_only = _dispense({"text": "take as directed (see clinic card)"})
    assert _codes(privacy.medication_labels(words_only, part2=True)) == {"R", "ETH", "42CFRPart2"}
    assert privacy.medication_labels(words_only, part2=False) == []
    assert privacy.is_uncoded_drug(words_only)
