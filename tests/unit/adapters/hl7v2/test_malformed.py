"""Malformed input: each case gives its typed error (code, location, reason), never a traceback."""

from __future__ import annotations

import pytest
from hl7v2_helpers import adt

import adapters.hl7v2 as h

GOOD = adt()
CASES = [
    ("empty", "", h.EmptyMessage, None),
    ("empty bytes", b"", h.EmptyMessage, None),
    ("whitespace", " \r\n\r\n ", h.EmptyMessage, None),
    ("no MSH", GOOD.split("\r", 1)[1], h.NotHL7, "MSH"),
    ("binary junk", bytes(range(256)) * 4, h.NotHL7, None),
    ("zip file", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00\xff" * 50, h.NotHL7, None),
    ("JSON", '{"resourceType": "Patient"}', h.NotHL7, "MSH"),
    ("MSH too short", "MSH|^~", h.BadEncodingCharacters, "MSH"),
    (
        "alphanumeric field separator",
        GOOD.replace("MSH|", "MSHA", 1),
        h.BadEncodingCharacters,
        "MSH",
    ),
    (
        "repeated encoding characters",
        GOOD.replace("^~\\&", "^^\\&", 1),
        h.BadEncodingCharacters,
        "MSH",
    ),
    ("three encoding characters", GOOD.replace("^~\\&", "^~\\", 1), h.BadEncodingCharacters, "MSH"),
    ("truncated segment", GOOD + "PI", h.SegmentSequenceError, "PI"),
    ("junk line", GOOD + "this is not a segment\r", h.SegmentSequenceError, None),
    ("lowercase segment id", GOOD.replace("\rPID|", "\rpid|"), h.SegmentSequenceError, None),
    ("second MSH", GOOD + GOOD, h.SegmentSequenceError, "MSH"),
    ("unknown version", GOOD.replace("|2.5\r", "|9.9\r", 1), h.UnsupportedVersion, "MSH"),
    ("version 2.2", GOOD.replace("|2.5\r", "|2.2\r", 1), h.UnsupportedVersion, "MSH"),
    ("no version", GOOD.replace("|2.5\r", "|\r", 1), h.RequiredFieldMissing, "MSH"),
    ("non-ADT message", GOOD.replace("ADT^A01", "ORM^O01"), h.UnsupportedMessage, "MSH"),
    ("unknown trigger", GOOD.replace("ADT^A01", "ADT^A99"), h.UnsupportedEvent, "MSH"),
    ("no message type", GOOD.replace("ADT^A01^ADT_A01", ""), h.RequiredFieldMissing, "MSH"),
    (
        "no trigger and no EVN-1",
        GOOD.replace("ADT^A01^ADT_A01", "ADT").replace("EVN|A01", "EVN|"),
        h.RequiredFieldMissing,
        "MSH",
    ),
    ("bad processing id", GOOD.replace("|P|2.5", "|X|2.5"), h.UnsupportedProcessing, "MSH"),
    ("no control id", GOOD.replace("|CTRL1|", "||"), h.RequiredFieldMissing, "MSH"),
    (
        "no message time",
        GOOD.replace("|20240102030405+0100||", "|||", 1),
        h.RequiredFieldMissing,
        "MSH",
    ),
    (
        "message time not a date",
        GOOD.replace("|20240102030405+0100||", "|yesterday||", 1),
        h.DataTypeError,
        "MSH",
    ),
    (
        "no patient identifier",
        GOOD.replace("MRN1^^^HOSP^MR~999^^^USSSA^SS", ""),
        h.RequiredFieldMissing,
        "PID",
    ),
    (
        "ASCII declared, UTF-8 sent",
        GOOD.replace("|2.5\r", "|2.5||||||ASCII\r", 1).replace("DOE", "DÖE").encode(),
        h.CharacterSetError,
        "MSH",
    ),
    (
        "unsupported character set",
        GOOD.replace("|2.5\r", "|2.5||||||EBCDIC\r", 1).encode(),
        h.CharacterSetError,
        "MSH",
    ),
    ("20 MB", GOOD + "NTE|1||" + "x" * (20 * 1024 * 1024) + "\r", h.MessageTooLarge, None),
]


@pytest.mark.parametrize(("label", "data", "error", "segment"), CASES, ids=[c[0] for c in CASES])
def test_malformed_message_gives_typed_error(label, data, error, segment):
    with pytest.raises(error) as exc:
        h.convert(data)
    err = exc.value
    assert isinstance(err, h.HL7Error)
    assert err.code in (100, 101, 102, 103, 200, 201, 202, 203, 207)
    assert err.reason
    if segment:
        assert err.segment == segment
    ack = h.build_ack(
        data if not isinstance(data, bytes) or len(data) < 1000 else None,
        error=err,
        control_id="A1",
    )
    assert f"|{err.code}^" in ack  # fit for an ERR segment


def test_there_are_at_least_twenty_cases():
    assert len(CASES) >= 20


def test_bad_date_in_optional_field_is_a_warning_not_an_error():
    result = h.convert(adt().replace("|19800102|", "|1980-01-02|"))
    assert any("PID-7" in w for w in result.warnings)
    assert "birthDate" not in next(
        e["resource"] for e in result.bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )


def test_strict_mode_translates_hl7apy_errors():
    text = adt().replace("|19800102|", "|notadate|")
    assert h.convert(text).warnings  # lenient by default: a warning, the rest converts
    with pytest.raises(h.DataTypeError) as exc:
        h.convert(text, options=h.ConvertOptions(strict=True))
    assert "hl7apy" in exc.value.reason
