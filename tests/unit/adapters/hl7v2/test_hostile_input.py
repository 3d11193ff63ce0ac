"""Hostile and odd input from issue #15: NUL and other controls (raw or ``\\X00\\``) are cleaned
from the values with an ACK warning; lone header segments and empty batches are answered, never
crash; every ACK echoes MSH-10 when the header can be read; an out-of-range DG1-15 is an AE."""

from __future__ import annotations

import hl7v2_helpers as h
import pytest

from adapters.hl7v2 import (
    BadEncodingCharacters,
    CharacterSetError,
    DataTypeError,
    EmptyMessage,
    SegmentSequenceError,
    build_ack,
    convert,
    empty_batch,
    parse,
)

PID_NUL_ESCAPED = h.PID.replace("DOE^JANE", "DO\\X00\\E^JANE")
PID_NUL_RAW = h.PID.replace("DOE^JANE", "DO\x00E^JANE")


def _segments(ack: str) -> dict[str, list[str]]:
    return {s[:3]: s.split("|") for s in ack.split("\r") if s}


@pytest.mark.parametrize("pid", [PID_NUL_ESCAPED, PID_NUL_RAW], ids=["escaped", "raw"])
def test_nul_in_pid5_is_removed_and_told_as_an_ack_warning(pid: str) -> None:
    result = convert(h.adt(pid=pid).encode())
    patient = h.resources(result.bundle, "Patient")[0]
    assert patient["name"][0]["family"] == "DOE"
    assert "\x00" not in repr(result.bundle)
    [warning] = result.ack_warnings
    assert (warning.segment, warning.field) == ("PID", 5)
    ack = _segments(build_ack(result.message, "AA", warnings=result.ack_warnings))
    assert ack["MSA"][1:3] == ["AA", "CTRL1"]
    assert ack["ERR"][2] == "PID^1^5" and ack["ERR"][4] == "W"


def test_other_control_characters_are_removed_too_but_tab_and_line_breaks_stay() -> None:
    result = convert(h.adt(pid=h.PID.replace("DOE^JANE", "D\x01O\\X1B\\E^JANE")).encode())
    assert h.resources(result.bundle, "Patient")[0]["name"][0]["family"] == "DOE"
    assert parse(h.adt().replace("EVN|", "EVN|\t")).segments[1][1] == "\tA01"


@pytest.mark.parametrize("raw", [b"MSH", b"MSH\rPID|1", b"MSH\r"], ids=["alone", "then-pid", "cr"])
def test_a_first_line_of_msh_alone_is_rejected_with_a_typed_error(raw: bytes) -> None:
    with pytest.raises(BadEncodingCharacters) as caught:
        convert(raw)
    assert caught.value.ack_code == "AR"
    assert _segments(build_ack(raw, error=caught.value))["MSA"][1] == "AR"


@pytest.mark.parametrize("raw", [b"FTS", b"FTS|1", b"BTS|0\rFTS|1"])
def test_a_batch_trailer_alone_is_rejected_with_a_typed_error(raw: bytes) -> None:
    with pytest.raises(EmptyMessage) as caught:
        convert(raw)
    assert caught.value.ack_code == "AR"
    assert empty_batch(raw) is None  # no header: not a well-formed batch


def test_an_empty_batch_is_well_formed_and_its_ack_echoes_bhs11() -> None:
    raw = b"BHS|^~\\&|APP|FAC|GW|GWFAC|20240101||||BATCH7\rBTS|0"
    header = empty_batch(raw)
    assert header is not None and header.name == "BHS"
    ack = _segments(build_ack(header, "AA"))
    assert ack["MSA"][1:3] == ["AA", "BATCH7"]
    assert ack["MSH"][2:6] == ["GW", "GWFAC", "APP", "FAC"]
    assert empty_batch(b"BHS|^~\\&\rBTS|0") is not None
    assert empty_batch(b"BHS|^~\\&\rBTS|2") is None  # the count says two messages are missing
    assert empty_batch(h.adt().encode()) is None


def test_the_ack_of_a_message_in_an_undeclared_character_set_echoes_msh10() -> None:
    raw = h.adt().replace("|2.5\r", "|2.5||||||UNICODE UTF-8\r").encode().replace(b"DOE", b"D\xffE")
    with pytest.raises(CharacterSetError) as caught:
        convert(raw)
    assert _segments(build_ack(raw, error=caught.value))["MSA"][1:3] == ["AR", "CTRL1"]


def test_the_ack_of_two_concatenated_messages_echoes_the_first_msh10() -> None:
    raw = (h.adt() + h.adt().replace("CTRL1", "CTRL2")).encode()
    with pytest.raises(SegmentSequenceError) as caught:
        convert(raw)
    assert _segments(build_ack(raw, error=caught.value))["MSA"][1:3] == ["AE", "CTRL1"]


def test_a_text_only_dg1_does_not_crash_the_conversion() -> None:
    convert(h.adt(extra="DG1|1|I10|^Alcohol dependence\r").encode())


def test_a_dg1_priority_beyond_a_fhir_positive_int_is_an_ae() -> None:
    dg1 = "DG1|1||F20.9^Schizophrenia^I10||20240101|A|||||||||2147483648\r"
    with pytest.raises(DataTypeError) as caught:
        convert(h.adt(extra=dg1).encode())
    assert (caught.value.segment, caught.value.field, caught.value.ack_code) == ("DG1", 15, "AE")
    convert(h.adt(extra=dg1.replace("2147483648", "2147483647")).encode())
