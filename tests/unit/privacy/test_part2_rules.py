"""The 2024 Part 2 rules of the privacy module, pure: who a class consent reaches, counselling
notes apart, what a disclosed copy carries, and inline labels that go with their elements."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from fhir_gateway import privacy
from fhir_gateway.privacy import Recipient, evaluate_consent, grants_of
from fhir_gateway.privacy import consent_forms as forms

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
PATIENT = "Patient/p1"
PART2_DATA = [dict(privacy.RESTRICTED), dict(privacy.ETH), dict(privacy.PART2)]
NOTES = [*PART2_DATA, dict(privacy.PSYTHPN)]


def _consent(
    recipients: list[str] | None, *, notes: bool = False, cid: str = "k1"
) -> dict[str, Any]:
    return forms.part2_consent(
        patient=PATIENT,
        discloser="Organization/program",
        recipients=recipients,
        purposes=forms.TPO,
        data_scope="my substance-use records",
        expires=date(2026, 12, 31),
        signed_on=date(2026, 1, 1),
        signed_by=PATIENT,
        document=None,
        counselling_notes=notes,
        consent_id=cid,
    )


def _permits(consent: dict[str, Any], who: str | Recipient, labels: Any = PART2_DATA) -> bool:
    return evaluate_consent(
        [consent], patient=PATIENT, recipient=who, at=NOW, labels=labels
    ).permitted


@pytest.mark.parametrize(
    ("treating", "related", "reached"),
    [(True, True, True), (True, False, False), (False, True, False), (False, False, False)],
)
def test_a_class_consent_reaches_treating_providers_with_a_relationship_only(
    treating: bool, related: bool, reached: bool
) -> None:
    tpo = _consent(None)
    who = Recipient("Organization/x", treating_provider=treating, related=related)
    assert _permits(tpo, who) is reached
    assert not _permits(tpo, "Organization/x")  # a bare name is never a class member
    assert [g.recipient for g in grants_of(tpo)] == [privacy.TREATING_CLASS]


def test_the_class_consent_ends_at_its_expiry_and_with_its_revocation() -> None:
    who = Recipient("Organization/x", treating_provider=True, related=True)
    tpo = _consent(None)
    later = datetime(2027, 1, 2, tzinfo=UTC)
    assert not evaluate_consent([tpo], patient=PATIENT, recipient=who, at=later, labels=PART2_DATA)
    revoked = forms.revocation(tpo, revoked_on=NOW, document={"data": "UkVW"})
    assert not _permits(revoked, who) and grants_of(revoked) == []


def test_counselling_notes_need_a_consent_of_their_own_that_covers_nothing_else() -> None:
    who = Recipient("Organization/x", treating_provider=True, related=True)
    tpo, named = _consent(None), _consent(["Organization/x"])
    notes = _consent(["Organization/x"], notes=True)
    assert _permits(tpo, who) and not _permits(tpo, who, NOTES)
    assert _permits(named, who) and not _permits(named, who, NOTES)
    assert _permits(notes, who, NOTES) and not _permits(notes, who)  # the notes, and only them
    mixed = _consent(None)
    mixed["provision"]["securityLabel"].append(dict(privacy.PSYTHPN))  # notes to a class
    assert not _permits(mixed, who, NOTES) and not _permits(mixed, who)
    assert {g.notes for g in grants_of(notes)} == {True}


def test_a_disclosed_copy_carries_the_notice_the_consent_and_the_right_obligations() -> None:
    resource = {"resourceType": "Task", "id": "t1", "meta": {"security": PART2_DATA}}
    consent = _consent(None)
    covered = Recipient("Organization/clinic", treating_provider=True, hipaa=True, related=True)
    peer = Recipient("Organization/peer")
    to_clinic = privacy.disclosure_copy(resource, privacy.Disclosure(consent, covered))
    to_peer = privacy.disclosure_copy(resource, privacy.Disclosure(consent, peer))
    codes = {lb["code"] for lb in to_clinic["meta"]["security"]}
    assert {"TREAT", "HPAYMT", "HOPERAT", "CPLYCD"} <= codes and "NORDSCLCD" not in codes
    assert "NORDSCLCD" in {lb["code"] for lb in to_peer["meta"]["security"]}
    [notice] = to_peer["meta"]["extension"]
    assert notice["url"] == privacy.DISPLAY and "42 CFR part 2" in notice["valueAnnotation"]["text"]
    [part2] = [lb for lb in to_peer["meta"]["security"] if lb["code"] == "42CFRPart2"]
    artifact = next(e for e in part2["extension"] if e["url"] == privacy.RELATED_ARTIFACT)
    assert artifact["valueRelatedArtifact"]["url"] == "Consent/k1"
    assert resource["meta"]["security"] == PART2_DATA  # the stored resource is left alone
    travelling = privacy.travelling_meta(to_peer, "https://gw.example.org/fhir")
    assert travelling is not None and travelling["extension"] == [notice]
    [sent] = [lb for lb in travelling["security"] if lb["code"] == "42CFRPart2"]
    assert any(
        e.get("valueRelatedArtifact", {}).get("url") == "https://gw.example.org/fhir/Consent/k1"
        for e in sent["extension"]
    )
    plain = {"resourceType": "Task", "id": "t2", "meta": {"security": [dict(privacy.PSY)]}}
    assert privacy.disclosure_copy(plain, privacy.Disclosure(consent, peer)) is plain


def _inline(code: dict[str, Any]) -> dict[str, Any]:
    return {"url": privacy.INLINE_LABEL, "valueCoding": code}


def test_an_element_and_its_inline_labels_go_only_where_they_may_be_seen() -> None:
    plan = {
        "resourceType": "CarePlan",
        "id": "cp",
        "activity": [
            {"reference": {"reference": "ServiceRequest/psy"}},
            {
                "extension": [_inline(privacy.PART2), _inline(privacy.ETH)],
                "reference": {"reference": "ServiceRequest/sud"},
            },
        ],
        "note": {"extension": [_inline(privacy.PSYTHPN)], "text": "from a counselling session"},
    }
    assert privacy.without_unseen_elements(plan, lambda codes: True) is plan
    shown = privacy.without_unseen_elements(plan, lambda codes: "PSYTHPN" not in codes)
    assert "note" not in shown and len(shown["activity"]) == 2
    bare = privacy.without_unseen_elements(plan, lambda codes: False)
    assert bare["activity"] == [{"reference": {"reference": "ServiceRequest/psy"}}]
    assert "42CFRPart2" not in str(bare) and "PSYTHPN" not in str(bare)


def test_part2_consents_and_counselling_notes_are_labelled() -> None:
    assert {lb["code"] for lb in privacy.consent_labels(_consent(None))} >= {
        "R",
        "ETH",
        "42CFRPart2",
    }
    assert "PSYTHPN" in {lb["code"] for lb in privacy.consent_labels(_consent(["X/y"], notes=True))}
    family = forms.family_involvement_consent(
        patient=PATIENT,
        related_person="RelatedPerson/r",
        data_scope="appointments",
        expires=None,
        signed_on=date(2026, 1, 1),
        document=None,
    )
    assert privacy.consent_labels(family) == []  # an opt-in that says nothing of substance use
    assert privacy.consent_labels({"resourceType": "Consent", "status": "active"}) == []
    note_type = "http://loinc.org|11488-4"
    note = {
        "resourceType": "DocumentReference",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
    }
    assert "PSYTHPN" in {
        lb["code"]
        for lb in privacy.counselling_note_labels(note, part2=True, note_types=[note_type])
    }
    assert privacy.counselling_note_labels(note, part2=False, note_types=[note_type]) == []
    assert privacy.counselling_note_labels(note, part2=True, note_types=["x|y"]) == []


def test_the_directory_marks_a_recipient() -> None:
    org = {
        "resourceType": "Organization",
        "type": [
            {"coding": [{"system": privacy.PART2_RECIPIENT, "code": "treating-provider"}]},
            {"coding": [{"system": privacy.PART2_RECIPIENT, "code": "business-associate"}]},
        ],
    }
    assert privacy.recipient_marks(org) == (True, True)
    assert privacy.recipient_marks({"type": [{"coding": [{"code": "treating-provider"}]}]}) == (
        False,
        False,
    )
    assert privacy.recipient_marks(None) == (False, False)
