"""Which country's rules apply to what a sender sends (DESIGN.md decision 13).

A facility's country decides its defaults: US facilities use ICD-10-CM and 42 CFR Part 2 for
substance-use programs; Indian facilities use WHO ICD-10, the Mental Healthcare Act 2017 and ABDM
identifiers. ``FHIR_GATEWAY_SENDER_COUNTRIES`` names a sender's country; others take
``FHIR_GATEWAY_DEFAULT_COUNTRY``.
"""

from __future__ import annotations

from fhir_gateway.settings import Settings

__all__ = ["US", "IN", "country_of", "crisis_line"]

US = "US"
IN = "IN"

# What a message to a patient's family says to call in a crisis, by the facility's country.
_CRISIS_LINES = {
    US: "call or text 988 (Suicide & Crisis Lifeline) or emergency services",
    IN: "call Tele-MANAS on 14416 or 1-800-891-4416 (free, any time), or emergency services on 112",
}


def country_of(settings: Settings, sender: str | None) -> str:
    """The country of a sender ('APP|FACILITY', its facility alone, or a FHIR source endpoint)."""
    countries = settings.sender_countries
    if sender:
        if sender in countries:
            return countries[sender].upper()
        facility = sender.split("|", 1)[-1]
        if facility in countries:
            return countries[facility].upper()
    return settings.default_country.upper()


def crisis_line(country: str) -> str:
    """What to call in a crisis in ``country`` (emergency services where the gateway knows no line)."""
    return _CRISIS_LINES.get(country.upper(), "call your local emergency services")
