"""Languages and ICD-10 codes as senders really send them (adapters.terminology)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from adapters.terminology import (
    BCP47,
    ISO639_2,
    concept_language,
    icd10_code,
    language_tag,
    normalise_language,
    normalise_patient_languages,
)

V2_0296 = "http://terminology.hl7.org/CodeSystem/v2-0296"


@pytest.mark.parametrize(
    ("sent", "tag"),
    [
        ("eng", "en"),  # ISO 639-2
        ("spa", "es"),
        ("kan", "kn"),
        ("hin", "hi"),
        ("ger", "de"),  # ISO 639-2/B
        ("deu", "de"),  # ISO 639-2/T
        ("fre", "fr"),
        ("EN", "en"),  # upper case, as many ADT feeds send table 0296
        ("ENG", "en"),
        ("SPA", "es"),
        ("en", "en"),
        (" es ", "es"),
        ("en_US", "en-US"),
        ("iw", "he"),  # deprecated ISO 639-1 code
        ("cmn", "zh"),  # the macrolanguage's shorter tag
        ("English", "en"),  # free text
        ("ENGLISH", "en"),
        ("Kannada", "kn"),
        ("Spanish; Castilian", "es"),
        ("Español", "es"),
        ("ಕನ್ನಡ", "kn"),
    ],
)
def test_codes_and_names_become_the_shortest_bcp47_tag(sent: str, tag: str) -> None:
    assert language_tag(sent) == tag


@pytest.mark.parametrize(
    "junk", ["", "   ", "XX", "zz9", "E", "Unknown", "Declined", "N/A", "12", "a" * 200]
)
def test_what_names_no_language_gives_none(junk: str) -> None:
    assert language_tag(junk) is None


def test_iso639_2_code_under_bcp47_becomes_the_tag_with_the_code_kept_as_iso639_2() -> None:
    sent = {"coding": [{"system": BCP47, "code": "eng", "display": "English"}]}
    result = normalise_language(sent)
    assert result.tag == "en"
    assert result.concept["coding"] == [
        {"system": BCP47, "code": "en", "display": "English"},
        {"system": ISO639_2, "code": "eng", "display": "English"},
    ]


def test_table_0296_code_is_kept_beside_the_tag() -> None:
    sent = {"coding": [{"system": V2_0296, "code": "SPA", "display": "Spanish"}], "text": "Spanish"}
    concept = normalise_language(sent).concept
    assert concept["coding"][0] == {"system": BCP47, "code": "es", "display": "Spanish"}
    assert concept["coding"][1] == sent["coding"][0]
    assert concept["text"] == "Spanish"


def test_text_only_language_gets_a_coding() -> None:
    concept = normalise_language({"text": "Hindi"}).concept
    assert concept == {
        "coding": [{"system": BCP47, "code": "hi", "display": "Hindi"}],
        "text": "Hindi",
    }


def test_a_name_in_the_bcp47_code_moves_to_the_text() -> None:
    concept = normalise_language({"coding": [{"system": BCP47, "code": "English"}]}).concept
    assert concept == {
        "coding": [{"system": BCP47, "code": "en", "display": "English"}],
        "text": "English",
    }


def test_upper_case_tag_is_one_coding_not_two() -> None:
    concept = normalise_language({"coding": [{"system": BCP47, "code": "EN"}]}).concept
    assert concept == {"coding": [{"system": BCP47, "code": "en", "display": "English"}]}


def test_unrecognised_language_is_kept_as_sent_with_text_and_no_tag() -> None:
    sent = {"coding": [{"system": "urn:example:local-languages", "code": "ZZ9"}]}
    result = normalise_language(sent)
    assert result.tag is None
    assert result.concept == {"coding": sent["coding"], "text": "ZZ9"}
    # junk that claims to be BCP-47 is no coding at all, only text
    junk = normalise_language({"coding": [{"system": BCP47, "code": "zz9"}]})
    assert junk.tag is None and junk.concept == {"text": "zz9"}


def test_already_normalised_concept_is_left_as_it_is() -> None:
    concept = {"coding": [{"system": BCP47, "code": "kn"}, {"system": ISO639_2, "code": "kan"}]}
    assert normalise_language(concept).concept is concept


def test_concept_language_prefers_the_bcp47_coding() -> None:
    concept = {"coding": [{"system": V2_0296, "code": "ger"}, {"system": BCP47, "code": "de-AT"}]}
    assert concept_language(concept) == "de-AT"
    assert concept_language({"coding": [{"system": V2_0296, "code": "ger"}]}) == "de"
    assert concept_language({"text": "German"}) == "de"
    assert concept_language(None) is None


def test_patient_languages_are_normalised_without_changing_the_input() -> None:
    patient = {
        "resourceType": "Patient",
        "communication": [
            {"language": {"coding": [{"system": BCP47, "code": "kan"}]}, "preferred": True}
        ],
    }
    out = normalise_patient_languages(patient)
    assert out["communication"][0]["language"]["coding"][0]["code"] == "kn"
    assert out["communication"][0]["preferred"] is True
    assert patient["communication"][0]["language"]["coding"] == [{"system": BCP47, "code": "kan"}]
    same = {
        "resourceType": "Patient",
        "communication": [{"language": {"coding": [{"system": BCP47, "code": "kn"}]}}],
    }
    assert normalise_patient_languages(same) is same


@pytest.mark.parametrize(
    ("sent", "code"),
    [
        ("F332", "F33.2"),
        ("F33.2", "F33.2"),
        ("F1020", "F10.20"),  # ICD-10-CM fifth character
        ("F10.20", "F10.20"),
        ("F32A", "F32.A"),  # ICD-10-CM letter after the category
        ("F32.A", "F32.A"),
        ("T360X1A", "T36.0X1A"),  # seventh character extension
        ("C4A0", "C4A.0"),  # category with a letter in third place
        ("f332", "F33.2"),
        ("F32", "F32"),  # a 3-character category has no dot
        ("Z59", "Z59"),
        ("29620", "29620"),  # ICD-9-CM: not an ICD-10 shape, left alone
        ("F33.", "F33."),
        ("F3", "F3"),
        ("", ""),
        ("F33212345", "F33212345"),  # too long to be ICD-10
    ],
)
def test_icd10_codes_get_their_dot(sent: str, code: str) -> None:
    assert icd10_code(sent) == code


@given(st.text(max_size=80))
@example("A\x000\x80")  # found by this test: a NUL made langcodes' name trie raise SystemError
def test_language_normalisation_never_raises(text: str) -> None:
    tag = language_tag(text)
    assert tag is None or language_tag(tag) == tag
    for concept in (
        {"text": text},
        {"coding": [{"system": BCP47, "code": text, "display": text}]},
        {"coding": [{"code": text}], "text": text},
    ):
        result = normalise_language(concept)
        assert normalise_language(result.concept).concept == result.concept  # idempotent
        concept_language(result.concept)


@given(st.text(max_size=40))
def test_icd10_normalisation_never_raises_and_is_idempotent(text: str) -> None:
    once = icd10_code(text)
    assert icd10_code(once) == once
    assert once.replace(".", "").upper() == text.replace(".", "").strip().upper() or once == text
