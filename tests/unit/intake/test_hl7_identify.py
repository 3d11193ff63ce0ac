"""What the inbox learns about an HL7 message before applying it: key, patient, source time,
and whether to refuse it."""

from __future__ import annotations

from datetime import UTC, datetime

from intake_helpers import adt

from fhir_gateway.services.intake_hl7 import UnknownSender, identify, options_from
from fhir_gateway.settings import Settings


def _identify(raw: bytes, **settings: object):  # type: ignore[no-untyped-def]
    s = Settings(database_url="sqlite://", **settings)  # type: ignore[arg-type]
    return identify(raw, options_from(s), s)


def test_key_is_sender_application_facility_and_control_id() -> None:
    ident = _identify(adt("A01", "CTRL-9", sender="LAB^NORTH"))
    assert ident.key_text == "hl7v2|LAB|NORTH|CTRL-9"
    assert ident.patient_key == "urn:fhir-gateway:hl7v2:assigning-authority:HOSP|MRN1"
    assert ident.error is None


def test_source_time_is_evn2_else_msh7() -> None:
    raw = adt("A01", "C1", when="20240301101500")
    assert _identify(raw).source_time == datetime(2024, 3, 1, 10, 15, tzinfo=UTC)
    without_evn2 = raw.replace(b"EVN|A01|20240301101500+0000", b"EVN|A01|")
    later_msh = without_evn2.replace(b"|20240301101500+0000||ADT", b"|20240302000000+0000||ADT")
    assert _identify(later_msh).source_time == datetime(2024, 3, 2, tzinfo=UTC)


def test_a_time_without_offset_takes_the_senders_zone() -> None:
    raw = adt("A01", "C1").replace(b"EVN|A01|20240101120000+0000", b"EVN|A01|20240101120000")
    ident = _identify(raw, sender_zones={"GOOD": "Europe/Berlin"})
    assert ident.source_time == datetime(2024, 1, 1, 11, 0, tzinfo=UTC)


def test_unknown_sender_is_refused_when_the_allow_list_is_on() -> None:
    raw = adt("A01", "C1", sender="ROGUE^ELSEWHERE")
    assert isinstance(
        _identify(raw, sender_allowlist={"GOOD": "Good Hospital"}).error, UnknownSender
    )
    assert _identify(raw).error is None
    assert (
        _identify(adt("A01", "C1"), sender_allowlist={"ADT1|GOOD": "Good Hospital"}).error is None
    )


def test_unparseable_text_has_no_key_and_is_rejected() -> None:
    ident = _identify(b"\x00\x01 not hl7 at all")
    assert ident.key_text is None and ident.rejected
