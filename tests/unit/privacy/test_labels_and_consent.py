"""The privacy module's pure rules: labels, the Part 2 sender rule, consent evaluation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fhir_gateway import privacy
from fhir_gateway.privacy import (
    activity_labels,
    condition_labels,
    disclosure_copy,
    evaluate_consent,
    grants_of,
    is_part2_sender,
    is_substance_use,
    reference_to,
)
from fhir_gateway.settings import Settings

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _codes(code: str, *, part2: bool = True, system: str = ICD) -> set[str]:
    condition = {
        "resourceType": "Condition",
        "code": {"coding": [{"system": system, "code": code}]},
    }
    return {lb["code"] for lb in condition_labels(condition, part2=part2)}


@pytest.mark.parametrize("code", ["F10.20", "F11", "F19.9", "f12.10", "F1520"])
def test_substance_use_from_a_part2_sender_is_r_eth_part2_psy(code):  # type: ignore[no-untyped-def]
    assert is_substance_use(code)
    assert _codes(code) == {"R", "ETH", "42CFRPart2", "PSY"}


def test_substance_use_from_another_sender_is_eth_and_psy_only():  # type: ignore[no-untyped-def]
    assert _codes("F10.20", part2=False) == {"ETH", "PSY"}


@pytest.mark.parametrize("code", ["F17.210", "F32.2", "F20.0", "F09"])
def test_tobacco_and_other_mental_health_codes_are_psy(code):  # type: ignore[no-untyped-def]
    assert _codes(code) == {"PSY"}


def test_non_mental_health_and_non_icd_codes_carry_no_label():  # type: ignore[no-untyped-def]
    assert _codes("I10") == set()
    assert _codes("F10.20", system="http://snomed.info/sct") == set()
    assert _codes("F10.20", system="http://hl7.org/fhir/sid/icd-10") == {
        "R",
        "ETH",
        "42CFRPart2",
        "PSY",
    }


@pytest.mark.parametrize(
    "code",
    [
        {"text": "Alcohol dependence uncomplicated"},
        {"coding": [{"display": "ETOH abuse"}]},
        {"coding": [{"system": ICD, "code": ""}], "text": "withdrawal"},
    ],
)
def test_a_diagnosis_in_words_only_is_part2_from_a_part2_sender(code):  # type: ignore[no-untyped-def]
    condition = {"resourceType": "Condition", "code": code}
    assert {lb["code"] for lb in condition_labels(condition, part2=True)} == {
        "R",
        "ETH",
        "42CFRPart2",
    }
    assert condition_labels(condition, part2=False) == []


def test_activity_labels_follow_the_template_sensitivity():  # type: ignore[no-untyped-def]
    assert [lb["code"] for lb in activity_labels(set(), part2=True)] == ["PSY"]
    assert [lb["code"] for lb in activity_labels({"substance-use"}, part2=True)] == [
        "R",
        "ETH",
        "42CFRPart2",
        "PSY",
    ]
    assert [lb["code"] for lb in activity_labels({"substance-use"}, part2=False)] == ["ETH", "PSY"]


def test_disclosure_adds_nordsclcd_to_sensitive_data_only():  # type: ignore[no-untyped-def]
    labelled = {"meta": {"security": activity_labels({"substance-use"}, part2=True)}}
    assert "NORDSCLCD" in {lb["code"] for lb in disclosure_copy(labelled)["meta"]["security"]}
    plain = {"meta": {"security": activity_labels(set(), part2=True)}}
    assert disclosure_copy(plain) is plain


def test_a_reference_carries_its_targets_words_only_where_its_labels_go():  # type: ignore[no-untyped-def]
    sud = {
        "resourceType": "Condition",
        "id": "c1",
        "meta": {"security": activity_labels({"substance-use"}, part2=True)},
    }
    assert reference_to(sud, "Alcohol dependence", activity_labels(set(), part2=True)) == {
        "reference": "Condition/c1"
    }
    part2 = activity_labels({"substance-use"}, part2=True)
    assert reference_to(sud, "Alcohol dependence", part2)["display"] == "Alcohol dependence"


# -- the Part 2 sender rule --------------------------------------------------------------------


def _settings(**values: object) -> Settings:
    return Settings(database_url="sqlite://", **values)  # type: ignore[arg-type]


def test_by_default_us_facilities_are_part2_programs_and_indian_ones_are_not():  # type: ignore[no-untyped-def]
    settings = _settings(sender_countries={"NIMHANS": "IN", "EPIC|STMARYS": "US"})
    assert is_part2_sender(settings, "EPIC|STMARYS")
    assert not is_part2_sender(settings, "HIS|NIMHANS")
    assert is_part2_sender(settings, None)  # unknown: the default country, US
    assert not is_part2_sender(_settings(default_country="IN"), None)


def test_an_explicit_list_overrides_the_country():  # type: ignore[no-untyped-def]
    settings = _settings(sender_countries={"NIMHANS": "IN"}, part2_senders=["HIS|NIMHANS"])
    assert is_part2_sender(settings, "HIS|NIMHANS")
    assert not is_part2_sender(settings, "EPIC|STMARYS")
    assert is_part2_sender(settings, None)  # it could be on the list
    assert is_part2_sender(_settings(part2_senders=["*"]), "HIS|NIMHANS")


# -- consents ----------------------------------------------------------------------------------


def _consent(**provision: object) -> dict:
    return {
        "resourceType": "Consent",
        "id": "k1",
        "status": "active",
        "patient": {"reference": "Patient/p1"},
        "provision": {
            "type": "permit",
            "actor": [{"reference": {"reference": "Organization/a"}}],
            **provision,
        },
    }


def _decide(
    consent: dict, recipient: str = "Organization/a", **kw: object
) -> privacy.ConsentDecision:
    return evaluate_consent([consent], patient="Patient/p1", recipient=recipient, at=NOW, **kw)  # type: ignore[arg-type]


def test_an_active_permit_grants_its_organizations():  # type: ignore[no-untyped-def]
    grants = grants_of(_consent(period={"start": "2026-01-01", "end": "2026-12-31"}))
    assert [(g.recipient, g.patient_id) for g in grants] == [("Organization/a", "p1")]
    assert grants[0].starts is not None and grants[0].ends is not None and grants[0].ends.day == 1
    decision = _decide(_consent())
    assert decision.permitted and decision.consent == "Consent/k1"


def test_inactive_denied_or_wrong_purpose_consents_grant_nothing():  # type: ignore[no-untyped-def]
    assert grants_of({**_consent(), "status": "inactive"}) == []
    denied = _consent(
        provision=[{"type": "deny", "actor": [{"reference": {"reference": "Organization/a"}}]}]
    )
    assert grants_of(denied) == [] and not _decide(denied)
    research = _consent(
        purpose=[{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH"}]
    )
    assert grants_of(research) == [] and not _decide(research)
    treatment = _consent(
        purpose=[{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}]
    )
    assert len(grants_of(treatment)) == 1 and _decide(treatment)
    assert _decide(research, purpose="HRESCH")


def test_deny_with_exceptions_and_nested_periods():  # type: ignore[no-untyped-def]
    nested = {
        "resourceType": "Consent",
        "id": "k2",
        "status": "active",
        "patient": {"reference": "Patient/p1"},
        "provision": {
            "type": "deny",
            "period": {"end": "2026-06-30"},
            "provision": [
                {"type": "permit", "actor": [{"reference": {"reference": "Organization/b"}}]}
            ],
        },
    }
    assert _decide(nested, "Organization/b") and not _decide(nested, "Organization/a")
    later = evaluate_consent(
        [nested],
        patient="Patient/p1",
        recipient="Organization/b",
        at=datetime(2026, 7, 1, tzinfo=UTC),
    )
    assert not later  # the exception lives within its parent's period
    expired = _consent(period={"end": "2026-01-01"})
    assert not _decide(expired) and "not in force" in _decide(expired).reason


def test_unreadable_consents_and_other_patients_consents_deny():  # type: ignore[no-untyped-def]
    untyped = _consent()
    del untyped["provision"]["type"]
    assert not _decide(untyped)
    assert not _decide({**_consent(), "provision": "everything"})
    assert not _decide(_consent(period={"end": "someday"}))
    other = {**_consent(), "patient": {"reference": "Patient/p2"}}
    assert "another patient" in _decide(other).reason
    revoked = {**_consent(), "status": "inactive"}
    assert "not active" in _decide(revoked).reason


def test_a_permit_limited_to_labels_covers_only_data_so_labelled():  # type: ignore[no-untyped-def]
    psy_only = _consent(securityLabel=[{"system": privacy.ACT_CODE, "code": "PSY"}])
    assert not _decide(psy_only)  # Part 2 data: ETH and 42CFRPart2 are not listed
    assert _decide(psy_only, labels=[privacy.PSY])


def test_only_organizations_or_people_named_are_recipients():  # type: ignore[no-untyped-def]
    consent = _consent(actor=[{"reference": {"reference": "RelatedPerson/x"}}])
    assert _decide(consent, "RelatedPerson/x") and not _decide(consent)
