"""Pure pieces: windows and due dates in the facility's zone, partner eligibility, consent,
security labels."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from fhir_gateway.careplans._consent import permits
from fhir_gateway.careplans._fhirpath import TemplateError
from fhir_gateway.careplans._labels import disclosure_labels, is_part2_sender, security_labels
from fhir_gateway.careplans._partners import Directory, Partner, eligible, patient_language
from fhir_gateway.careplans._timing import due_date, window

CHICAGO = ZoneInfo("America/Chicago")


def rng(low: int, high: int, unit: str = "d") -> dict:
    return {
        "timingRange": {"low": {"value": low, "code": unit}, "high": {"value": high, "code": unit}}
    }


def test_day_windows_exclude_the_discharge_day_and_follow_dst() -> None:
    # 8 March 2025 is CST (-06:00); CDT (-05:00) starts on the 9th.
    span = window(datetime(2025, 3, 8, 22, 30, tzinfo=CHICAGO), rng(1, 7))
    assert span is not None
    assert span.to_period() == {
        "start": "2025-03-09T00:00:00-06:00",
        "end": "2025-03-15T23:59:59-05:00",
    }


def test_hour_windows_count_from_the_discharge_instant() -> None:
    span = window(datetime(2025, 11, 1, 20, 0, tzinfo=CHICAGO), rng(0, 72, "h"))
    assert span is not None
    # 72 elapsed hours across the end of DST (2 November) land at 19:00 local
    assert span.to_period()["end"] == "2025-11-04T19:00:00-06:00"


def test_goal_due_dates_in_months_clamp_to_the_month_end() -> None:
    assert due_date(datetime(2025, 8, 31, 9, tzinfo=CHICAGO), {"value": 6, "code": "mo"}) == date(
        2026, 2, 28
    )
    assert due_date(datetime(2025, 3, 10, 9, tzinfo=CHICAGO), {"value": 30, "code": "d"}) == date(
        2025, 4, 9
    )


def test_unknown_units_are_a_template_error() -> None:
    with pytest.raises(TemplateError):
        window(datetime(2025, 3, 10, tzinfo=CHICAGO), rng(1, 2, "fortnight"))


SERVICE = ("http://fhir-gateway.org/fhir/CodeSystem/referral-service", "therapy-intake")
SPRINGFIELD = {"city": "Springfield", "state": "IL"}


def partner(
    name: str, *, areas=(SPRINGFIELD,), languages=("en",), accepting=True, away=()
) -> Partner:
    return Partner(
        f"Organization/{name}",
        f"HealthcareService/{name}",
        name,
        frozenset({SERVICE}),
        tuple(areas),
        frozenset(languages),
        accepting,
        tuple(away),
        None,
    )


def choose(*partners: Partner, address=None, language="en", on=date(2025, 3, 10)) -> list[str]:
    found = eligible(
        Directory(tuple(partners)), {SERVICE}, address=address, language=language, on=on
    )
    return [p.name for p in found]


def test_closer_coverage_ranks_first_and_other_areas_are_out() -> None:
    home = {"city": "Springfield", "state": "IL", "postalCode": "62701"}
    statewide = partner("a-statewide", areas=({"state": "IL"},))
    local = partner("z-local")
    zip_area = partner("m-zip", areas=({"state": "IL", "postalCode": "627"},))
    elsewhere = partner("b-ohio", areas=({"state": "OH"},))
    anywhere = partner("c-anywhere", areas=())
    assert choose(statewide, local, zip_area, elsewhere, anywhere, address=home) == [
        "m-zip",
        "z-local",
        "a-statewide",
        "c-anywhere",
    ]


def test_language_availability_and_closures() -> None:
    spanish = partner("spanish", languages=("es",))
    full = partner("full", accepting=False)
    closed = partner("closed", away=(("2025-03-01", "2025-03-31"),))
    open_later = partner("later", away=(("2025-04-01", None),))
    assert choose(spanish, full, closed, open_later) == ["later"]
    assert choose(spanish, full, closed, open_later, language="es") == ["spanish"]


def test_patient_language_prefers_the_preferred_one() -> None:
    patient = {
        "communication": [
            {"language": {"coding": [{"code": "en"}]}},
            {"language": {"coding": [{"code": "es-MX"}]}, "preferred": True},
        ]
    }
    assert patient_language(patient) == "es"
    assert patient_language({}) == "en"


def consent(provision: dict, status: str = "active") -> dict:
    return {"resourceType": "Consent", "status": status, "provision": provision}


def actor(org: str) -> dict:
    return {
        "role": {"coding": [{"code": "IRCP"}]},
        "reference": {"reference": f"Organization/{org}"},
    }


def test_consent_permits_named_actors_in_force() -> None:
    today = date(2025, 3, 10)
    assert permits(consent({"type": "permit", "actor": [actor("a")]}), today) == {"Organization/a"}
    assert permits(consent({"type": "permit", "actor": [actor("a")]}, "inactive"), today) == set()
    assert permits(consent({"type": "deny", "actor": [actor("a")]}), today) == set()
    expired = {"type": "permit", "period": {"end": "2025-01-01"}, "actor": [actor("a")]}
    assert permits(consent(expired), today) == set()
    nested = {"type": "deny", "provision": [{"type": "permit", "actor": [actor("b")]}]}
    assert permits(consent(nested), today) == {"Organization/b"}


def test_labels() -> None:
    assert [lb["code"] for lb in security_labels(set(), part2=True)] == ["PSY"]
    assert [lb["code"] for lb in security_labels({"substance-use"}, part2=True)] == [
        "R",
        "ETH",
        "42CFRPart2",
        "PSY",
    ]
    assert [lb["code"] for lb in security_labels({"substance-use"}, part2=False)] == ["ETH", "PSY"]
    assert is_part2_sender(["*"], None) and is_part2_sender(["EPIC|STMARYS"], "EPIC|STMARYS")
    assert not is_part2_sender(["OTHER"], "EPIC|STMARYS")
    labelled = {"meta": {"security": security_labels({"substance-use"}, part2=True)}}
    assert "NORDSCLCD" in {lb["code"] for lb in disclosure_labels(labelled)["meta"]["security"]}
    plain = {"meta": {"security": security_labels(set(), part2=True)}}
    assert disclosure_labels(plain) is plain
