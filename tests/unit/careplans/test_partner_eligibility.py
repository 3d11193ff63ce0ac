"""Why a partner is (not) eligible, as a case manager choosing one by hand reads it: the same
tests as routing, in the same order, agreeing with ``eligible``."""

from __future__ import annotations

from datetime import date

from fhir_gateway.careplans._partners import Directory, Partner, eligibility, eligible

SERVICE = ("http://fhir-gateway.org/fhir/CodeSystem/referral-service", "therapy-intake")
HOME = {"city": "Springfield", "state": "IL", "postalCode": "62701"}
DAY = date(2025, 3, 10)


def partner(
    name: str,
    *,
    areas=({"city": "Springfield", "state": "IL"},),
    languages=("en",),
    accepting=True,
    away=(),
) -> Partner:  # type: ignore[no-untyped-def]
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


def why(p: Partner, language: str = "en", address: dict | None = HOME) -> tuple[bool, list[str]]:  # type: ignore[type-arg]
    return eligibility(p, {SERVICE}, address=address, language=language, on=DAY)


def test_an_eligible_partner_says_every_requirement_it_meets() -> None:
    ok, reasons = why(partner("near"))
    assert ok and reasons == [
        "offers this service",
        "covers the patient's area (Springfield, IL 62701)",
        "speaks the patient's language (en)",
        "is accepting new clients",
        "is available on 10 Mar 2025",
    ]
    assert why(partner("anywhere", areas=()))[1][1] == "serves any area"


def test_an_ineligible_partner_stops_at_the_first_requirement_it_fails() -> None:
    assert (
        why(partner("far", areas=({"state": "WI"},)))[1][-1] == "does not cover the patient's area"
    )
    assert why(partner("es", languages=("es",)))[1][-1] == (
        "does not speak the patient's language (en; it speaks es)"
    )
    assert why(partner("full", accepting=False))[1][-1] == "is not accepting new clients"
    closed = partner("closed", away=(("2025-03-01", "2025-03-31"),))
    assert why(closed)[1][-1] == "is not available on 10 Mar 2025"
    assert why(partner("x"), language="es")[0] is False


def test_it_agrees_with_routing() -> None:
    partners = [
        partner("near"),
        partner("far", areas=({"state": "WI"},)),
        partner("es", languages=("es",)),
        partner("full", accepting=False),
        partner("closed", away=(("2025-03-01", None),)),
    ]
    routed = {
        p.name
        for p in eligible(
            Directory(tuple(partners)), {SERVICE}, address=HOME, language="en", on=DAY
        )
    }
    assert {p.name for p in partners if why(p)[0]} == routed == {"near"}
