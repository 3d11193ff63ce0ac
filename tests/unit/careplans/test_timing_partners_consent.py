"""Pure pieces: windows and due dates in the facility's zone, partner eligibility (consent and
labels: tests/unit/privacy)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from fhir_gateway.careplans._fhirpath import TemplateError
from fhir_gateway.careplans._partners import (
    Directory,
    Partner,
    eligible,
    no_partner_reason,
    patient_language,
)
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


def why(*partners: Partner, address=None, language="en", on=date(2025, 3, 10)) -> str:
    return no_partner_reason(
        Directory(tuple(partners)), {SERVICE}, address=address, language=language, on=on
    )


def test_the_reason_for_no_partner_names_the_requirement_nobody_met() -> None:
    home = {"city": "Chicago", "state": "IL", "postalCode": "60601"}
    assert why() == "no partner in the directory offers this service (code therapy-intake)"
    assert why(partner("Full", accepting=False)) == (
        "no partner offering this service in the patient's area and language is accepting new "
        "clients (not accepting: Full)"
    )
    assert why(partner("Shut", away=(("2025-03-01", None),))) == (
        "no partner offering this service in the patient's area and language is available on "
        "2025-03-10 (closed: Shut)"
    )
    assert why(partner("Anglo"), language="es") == (
        "no partner offering this service in the patient's area speaks the patient's language "
        "(es); those there (Anglo) speak: en"
    )
    assert why(partner("Local"), address=home) == (
        "no partner offering this service covers the patient's area (Chicago, IL 60601); those "
        "offering it (Local) cover other areas"
    )
    assert why(partner("Local"), address={"city": "Springfield", "state": "IL"}) == (
        "no owner was chosen; it is open for an eligible partner to claim (Local)"
    )


def test_a_partner_elsewhere_never_hides_the_reason_of_the_local_one() -> None:
    """The Springfield partner is full; one in Bengaluru would take the patient: the reason is
    the local partner's, not that the willing one is elsewhere."""
    springfield = {"city": "Springfield", "state": "IL", "postalCode": "62701"}
    local = partner("NAMI", accepting=False)
    elsewhere = partner("Jothe", areas=({"city": "Bengaluru"},))
    assert why(local, elsewhere, address=springfield) == (
        "no partner offering this service in the patient's area and language is accepting new "
        "clients (not accepting: NAMI)"
    )


def test_patient_language_prefers_the_preferred_one() -> None:
    patient = {
        "communication": [
            {"language": {"coding": [{"code": "en"}]}},
            {"language": {"coding": [{"code": "es-MX"}]}, "preferred": True},
        ]
    }
    assert patient_language(patient) == "es"
    assert patient_language({}) == "en"
