"""The Consent shapes (``privacy.consent_forms``): valid FHIR R4 Consents holding the elements of
42 CFR 2.31(a), and a revocation that keeps the signed consent and attaches the signed revocation."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from fhir.resources.R4B.consent import Consent

from fhir_gateway.privacy import consent_forms as forms

SIGNED = {"contentType": "application/pdf", "data": "JVBERi0xLjQ=", "title": "Signed consent"}


def _tpo(**kw: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "patient": "Patient/p1",
        "discloser": "Organization/care-coordination",
        "recipients": None,
        "purposes": forms.TPO,
        "data_scope": "my substance-use diagnoses, care plan and referrals",
        "expires": date(2027, 3, 1),
        "signed_on": date(2026, 3, 1),
        "signed_by": "Patient/p1",
        "document": SIGNED,
        "consent_id": "tpo",
    }
    return forms.part2_consent(**(values | kw))


def test_a_tpo_consent_holds_every_element_of_2_31_a() -> None:
    consent = _tpo()
    Consent.model_validate(consent)
    provision = consent["provision"]
    assert consent["patient"] == {"reference": "Patient/p1"}  # (1)
    assert consent["organization"] == [{"reference": "Organization/care-coordination"}]  # (2)
    assert {lb["code"] for lb in provision["securityLabel"]} == {"ETH", "42CFRPart2"}  # (3)
    assert [forms.recipient_class(a) for a in provision["actor"]] == ["treating-providers"]  # (4)
    assert [p["code"] for p in provision["purpose"]] == ["TREAT", "HPAYMT", "HOPERAT"]  # (5)
    assert provision["period"] == {"start": "2026-03-01", "end": "2027-03-01"}  # (7)
    assert consent["performer"] == [{"reference": "Patient/p1"}]  # (8)
    assert consent["dateTime"] == "2026-03-01"  # (9)
    assert consent["sourceAttachment"]["data"] == SIGNED["data"]
    words = forms.describe(consent)
    assert "treating-provider relationship" in words and "until 2027-03-01" in words
    assert "revoke" in words and "not SUD counselling notes" in words


def test_a_counselling_notes_consent_names_its_recipients_and_covers_the_notes_only() -> None:
    notes = _tpo(recipients=["Organization/prairie-recovery"], counselling_notes=True)
    Consent.model_validate(notes)
    assert "PSYTHPN" in {lb["code"] for lb in notes["provision"]["securityLabel"]}
    assert "SUD counselling notes only" in forms.describe(notes)
    with pytest.raises(ValueError):
        _tpo(counselling_notes=True)  # never to a class
    with pytest.raises(ValueError):
        _tpo(purposes=[])


def test_family_involvement_and_revocation() -> None:
    family = forms.family_involvement_consent(
        patient="Patient/p1",
        related_person="RelatedPerson/r1",
        data_scope="appointments and the care plan",
        expires=None,
        signed_on=date(2026, 3, 1),
        document=None,
    )
    Consent.model_validate(family)
    assert family["provision"]["actor"][0]["reference"] == {"reference": "RelatedPerson/r1"}
    revoked = forms.revocation(
        _tpo(), revoked_on=datetime(2026, 4, 1, 9, tzinfo=UTC), document={"data": "UkVWT0tF"}
    )
    Consent.model_validate(revoked)
    assert revoked["status"] == "inactive"
    assert revoked["sourceAttachment"]["data"] == SIGNED["data"]  # the signed consent stays
    (ext,) = [e for e in revoked["extension"] if e["url"] == forms.REVOCATION_URL]
    parts = {e["url"]: e for e in ext["extension"]}
    assert parts["document"]["valueAttachment"]["data"] == "UkVWT0tF"
    assert "permits nothing now" in forms.describe(revoked)
