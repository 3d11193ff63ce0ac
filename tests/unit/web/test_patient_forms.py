"""The patient page's consent forms, checked without a database: each element of 42 CFR 2.31(a)
required, dates that are real and in order, values only from what the form offered, and the
signed document a bounded PDF, PNG or JPEG."""

from __future__ import annotations

import base64
from datetime import date
from typing import Any

import pytest

from fhir_gateway.web._patient_forms import (
    MAX_DOCUMENT_BYTES,
    ConsentChoices,
    UploadedDocument,
    check_family,
    check_note,
    check_part2,
)

TODAY = date(2025, 3, 17)
CHOICES = ConsentChoices(
    partners={"Organization/prairie": "Prairie Recovery"},
    disclosers={"Organization/st-marys": "St Mary's"},
    signers={"Patient/p1": "Jane Doe (the patient)", "RelatedPerson/r1": "John Doe"},
    related={"RelatedPerson/r1": "John Doe"},
)
PDF = UploadedDocument("signed.pdf", "application/pdf", b"%PDF-1.4 signed")


def part2(**changes: Any) -> dict[str, list[str]]:
    fields: dict[str, Any] = {
        "discloser": "Organization/st-marys",
        "recipients": "named",
        "partner": ["Organization/prairie"],
        "purpose": ["TREAT"],
        "data_scope": "My alcohol treatment records.",
        "signed_on": "2025-03-17",
        "signed_by": "Patient/p1",
        "expires": "2026-03-17",
        **changes,
    }
    return {k: v if isinstance(v, list) else [v] for k, v in fields.items() if v is not None}


def test_a_complete_part2_form_gives_the_builder_every_element():
    checked = check_part2(part2(), PDF, CHOICES, patient="Patient/p1", today=TODAY)
    assert checked.ok, checked.errors
    args = checked.arguments
    assert args["recipients"] == ["Organization/prairie"] and args["purposes"] == ["TREAT"]
    assert args["signed_on"] == TODAY and args["expires"] == date(2026, 3, 17)
    assert args["discloser"] == "Organization/st-marys" and args["signed_by"] == "Patient/p1"
    document = args["document"]
    assert document["contentType"] == "application/pdf" and document["size"] == len(PDF.data)
    assert base64.b64decode(document["data"]) == PDF.data


def test_a_tpo_consent_names_no_partner():
    fields = part2(recipients="treating", partner=None, purpose=["TREAT", "HPAYMT", "HOPERAT"])
    checked = check_part2(fields, PDF, CHOICES, patient="Patient/p1", today=TODAY)
    assert checked.ok and checked.arguments["recipients"] is None


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"signed_on": "2025-02-30"}, "signed_on", "as a real date"),
        ({"signed_on": ""}, "signed_on", "Enter the date the form was signed"),
        ({"signed_on": "2025-03-18"}, "signed_on", "in the future"),
        ({"expires": "31/12/2025"}, "expires", "as a real date"),
        ({"expires": None}, "expires", "Enter the date the consent ends"),
        ({"expires": "2025-03-16", "signed_on": "2025-03-15"}, "expires", "has passed"),
        ({"expires": "2025-03-14", "signed_on": "2025-03-15"}, "expires", "before the day"),
        ({"signed_by": None}, "signed_by", "Say who signed"),
        ({"signed_by": "Patient/p2"}, "signed_by", "Say who signed"),
        ({"discloser": "Organization/anyone"}, "discloser", "who may disclose"),
        ({"recipients": None}, "recipients", "named partners, or every treating provider"),
        ({"partner": None}, "partner", "at least one partner"),
        ({"partner": ["Organization/x"]}, "partner", "from the list"),
        ({"purpose": None}, "purpose", "at least one purpose"),
        ({"purpose": ["RESEARCH"]}, "purpose", "at least one purpose"),
        ({"data_scope": "   "}, "data_scope", "Describe what may be disclosed"),
        ({"data_scope": "x" * 2001}, "data_scope", "2000 characters"),
        ({"data_scope": "bad\x00byte"}, "data_scope", "cannot be stored"),
        (
            {"recipients": "treating", "partner": None, "counselling_notes": "yes"},
            "counselling_notes",
            "name each recipient",
        ),
    ],
)
def test_each_wrong_field_says_what_to_fix(changes, field, words):
    checked = check_part2(part2(**changes), PDF, CHOICES, patient="Patient/p1", today=TODAY)
    assert not checked.ok and words in checked.errors[field]
    assert checked.arguments == {}


@pytest.mark.parametrize(
    ("upload", "words"),
    [
        (None, "Attach the signed consent form"),
        (UploadedDocument("", "", b""), "Attach the signed consent form"),
        (UploadedDocument("scan.pdf", "application/pdf", b""), "empty"),
        (
            UploadedDocument("scan.pdf", "application/pdf", b"<html>not a scan</html>"),
            "PDF, PNG or JPEG",
        ),
        (UploadedDocument("scan.exe", "image/png", b"MZ\x90\x00"), "PDF, PNG or JPEG"),
        (
            UploadedDocument("big.pdf", "application/pdf", b"%PDF-" + b"0" * MAX_DOCUMENT_BYTES),
            "the limit is 4 MB",
        ),
    ],
)
def test_the_signed_document_is_required_bounded_and_of_an_accepted_kind(upload, words):
    checked = check_part2(part2(), upload, CHOICES, patient="Patient/p1", today=TODAY)
    assert words in checked.errors["document"]


def test_a_document_is_typed_by_its_bytes_not_its_name():
    jpeg = UploadedDocument("photo.pdf", "application/pdf", b"\xff\xd8\xff\xe0 a photo")
    checked = check_part2(part2(), jpeg, CHOICES, patient="Patient/p1", today=TODAY)
    assert checked.arguments["document"]["contentType"] == "image/jpeg"


def test_a_family_consent_may_last_until_revoked_but_names_someone_on_file():
    fields = {"related_person": ["RelatedPerson/r1"], "data_scope": ["My appointments."]}
    fields |= {"signed_on": ["2025-03-10"]}
    checked = check_family(fields, PDF, CHOICES, patient="Patient/p1", today=TODAY)
    assert checked.ok and checked.arguments["expires"] is None
    fields["related_person"] = ["RelatedPerson/r2"]
    checked = check_family(fields, PDF, CHOICES, patient="Patient/p1", today=TODAY)
    assert "family member or carer" in checked.errors["related_person"]


def test_an_alert_note_is_required_and_bounded():
    assert check_note({"note": ["Called her; safe."]}).ok
    assert "Write a note" in check_note({"note": ["  "]}).errors["note"]
    assert "1000 characters" in check_note({"note": ["x" * 1001]}).errors["note"]
