"""The demo's two invented hospitals as a plain `serve` sees them: Bengaluru under India's rules
(zone Asia/Kolkata, no 42 CFR Part 2, WHO ICD-10), Springfield under the US's; the demo's messages
name them, fresh ids every run, dated the day they are made in the hospital's zone."""

from __future__ import annotations

from datetime import UTC, datetime

from fhir_gateway.cli.demo_samples import SITES, discharge
from fhir_gateway.jurisdiction import country_of
from fhir_gateway.privacy import is_part2_sender
from fhir_gateway.services.intake_hl7 import options_from
from fhir_gateway.settings import Settings

SPRINGFIELD, BENGALURU = SITES


def _sender(site) -> str:  # type: ignore[no-untyped-def]
    return f"{site.application}|{site.facility}"


def test_default_settings_put_the_demo_hospitals_in_their_countries_and_zones() -> None:
    settings = Settings()
    assert country_of(settings, _sender(BENGALURU)) == "IN"
    assert country_of(settings, _sender(SPRINGFIELD)) == "US"
    assert is_part2_sender(settings, _sender(SPRINGFIELD)) is True
    assert is_part2_sender(settings, _sender(BENGALURU)) is False
    profile = options_from(settings).sender(BENGALURU.application, BENGALURU.facility)
    assert (profile.zone, profile.country) == ("Asia/Kolkata", "IN")


def test_a_deployment_that_names_its_own_senders_replaces_the_demo_ones() -> None:
    settings = Settings(sender_countries={"NIMHIS|BLRPSY": "IN"})
    assert country_of(settings, "NIMHIS|BLRPSY") == "IN"
    assert country_of(settings, _sender(BENGALURU)) == "US"  # the default country


def test_every_demo_discharge_is_new_and_dated_in_its_hospitals_zone() -> None:
    now = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)  # 01:30 on the 4th in Bengaluru
    first, second = discharge(BENGALURU, now), discharge(BENGALURU, now)
    assert len({first.control_id, second.control_id}) == 2 and len({first.mrn, second.mrn}) == 2
    text = first.message.decode()
    assert (
        f"|{first.control_id}|" in text
        and f"{first.mrn}^^^" in text
        and f"{first.visit}^^^" in text
    )
    assert first.discharged.isoformat() == "2026-12-04T01:30:00+05:30"
    assert "20261204013000+0530" in text
    assert "PID|" in text and "^560011^IND^H" in text and "kn^Kannada" in text
    assert discharge(SPRINGFIELD, now).discharged.isoformat() == "2026-12-03T14:00:00-06:00"
