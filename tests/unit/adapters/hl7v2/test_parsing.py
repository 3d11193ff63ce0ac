"""Parsing: the corpus quirks, every escape sequence, encodings, batches."""

from __future__ import annotations

import pytest
from hl7v2_helpers import DATA, adt, ms_message, resources

from adapters.hl7v2 import Delimiters, convert, parse, split_batch


def test_quirk_lf_between_segments_and_bom():
    raw = ms_message("ADT01-23")
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r" not in raw
    msg = parse(raw)
    assert msg.msh.name == "MSH" and msg.msh.value(10) == "599102"
    assert [s.name for s in msg][:3] == ["MSH", "EVN", "PID"]


def test_quirk_msh9_decides_not_evn1():
    result = convert(ms_message("ADT-A03-02"))
    assert parse(ms_message("ADT-A03-02")).first("EVN").value(1) == "A01"
    assert result.event == "A03"
    assert resources(result.bundle, "Encounter")[0]["status"] == "finished"


def test_quirk_t_escape_repeats_subcomponents_and_offsets():
    result = convert(ms_message("ADT-A03-01"))
    enc = resources(result.bundle, "Encounter")[0]
    assert (
        enc["hospitalization"]["admitSource"]["coding"][0]["code"]
        == "NHS Provider-General (inc.A&E-this Hosp)"
    )
    patient = resources(result.bundle, "Patient")[0]
    assert [n["family"] for n in patient["name"]] == ["EVERYMAN", "Josh"]  # repeated field
    assert patient["identifier"][0]["system"] == "urn:oid:2.16.840.1.113883.19" or any(
        i.get("system") == "urn:oid:2.16.1" for i in patient["identifier"]
    )  # CX.4 subcomponents → OID system
    assert enc["period"]["start"] == "2015-02-08T11:34:19+01:10"  # offset kept as sent
    assert result.bundle["timestamp"] == "1989-08-18T11:26:00+02:15"  # +0215, seconds padded


def test_quirk_expected_times_compare_as_instants():
    from datetime import datetime

    ours = datetime.fromisoformat("2015-02-08T11:34:19+01:10")
    theirs = datetime.fromisoformat("2015-02-08T15:54:19+05:30")  # Microsoft's rendering
    assert ours == theirs and str(ours) != str(theirs)


@pytest.mark.parametrize("name", ["sample_unix.hl7", "sample_win.hl7"])
def test_quirk_linuxforhealth_double_backslash_in_msh2(name):
    raw = (DATA / "linuxforhealth" / name).read_bytes()
    assert b"^~\\\\&" in raw
    msg = parse(raw)
    assert (msg.d.component, msg.d.repetition, msg.d.escape, msg.d.subcomponent) == (
        "^",
        "~",
        "\\",
        "&",
    )
    result = convert(raw)
    assert result.patient_key.endswith("|PID1234")
    allergy = resources(result.bundle, "AllergyIntolerance")[1]
    assert [m["text"] for m in allergy["reaction"][0]["manifestation"]] == ["SEIZURES", "VOMITING"]
    assert any("literal '\\r'" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("escaped", "plain"),
    [
        ("A\\F\\B", "A|B"),
        ("A\\S\\B", "A^B"),
        ("A\\T\\B", "A&B"),
        ("A\\R\\B", "A~B"),
        ("A\\E\\B", "A\\B"),
        ("caf\\XC3A9\\", "café"),
        ("line1\\.br\\line2", "line1\nline2"),
        ("\\H\\bold\\N\\", "bold"),
        ("A\\P\\B", "AB"),  # \P\ with no truncation character declared
        ("unterminated \\F", "unterminated \\F"),
    ],
)
def test_escape_sequences(escaped, plain):
    assert Delimiters().unescape(escaped) == plain


def test_escape_in_a_mapped_field_reaches_fhir():
    pid = "PID|1||MRN1^^^HOSP^MR||O\\S\\BRIEN^ANNE\\T\\MARIE||19800102|F\r"
    patient = resources(convert(adt(pid=pid)).bundle, "Patient")[0]
    assert patient["name"][0] == {"family": "O^BRIEN", "given": ["ANNE&MARIE"]}


def test_custom_delimiters_and_truncation_character():
    text = adt().replace("MSH|^~\\&|", "MSH#$*/%!|", 1)
    text = text.replace("|", "#").replace("^", "$").replace("~", "*").replace("&", "%")
    text = text.replace("MSH#$*/%!#", "MSH#$*/%!#", 1)
    msg = parse(text)
    assert (msg.d.field, msg.d.component, msg.d.truncation) == ("#", "$", "!")
    assert resources(convert(text).bundle, "Patient")[0]["name"][0]["family"] == "DOE"


@pytest.mark.parametrize("ending", ["\r", "\n", "\r\n"])
def test_segment_terminators(ending):
    text = adt().replace("\r", ending)
    assert resources(convert(text).bundle, "Patient")[0]["birthDate"] == "1980-01-02"


def test_msh18_latin1_and_utf8():
    text = adt(pid="PID|1||MRN1^^^HOSP^MR||MÜLLER^JOSÉ\r")
    latin = text.replace("|2.5\r", "|2.5||||||8859/1\r", 1).encode("latin-1")
    utf8 = text.replace("|2.5\r", "|2.5||||||UNICODE UTF-8\r", 1).encode("utf-8")
    for raw in (latin, utf8):
        assert resources(convert(raw).bundle, "Patient")[0]["name"][0]["family"] == "MÜLLER"


def test_z_and_unknown_segments_are_reported_not_fatal():
    result = convert(adt(extra="ZPI|1|custom\rQQQ|1\r"))
    assert any(w.startswith("ZPI") and "Z-segment" in w for w in result.warnings)
    assert any(w.startswith("QQQ") and "unknown segment" in w for w in result.warnings)


def test_split_batch():
    one, two = adt(), adt().replace("CTRL1", "CTRL2")
    batch = f"FHS|^~\\&|APP\rBHS|^~\\&|APP\r{one}{two}BTS|2\rFTS|1\r"
    parts = split_batch(batch)
    assert [convert(p).message_control_id for p in parts] == ["CTRL1", "CTRL2"]


def test_split_batch_detects_a_truncated_batch():
    from adapters.hl7v2 import SegmentSequenceError

    with pytest.raises(SegmentSequenceError) as exc:
        split_batch(f"BHS|^~\\&|APP\r{adt()}BTS|3\r")
    assert exc.value.segment == "BTS"


def test_single_message_inside_batch_envelope_converts():
    assert convert(f"FHS|^~\\&|A\rBHS|^~\\&|A\r{adt()}BTS|1\rFTS|1\r").event == "A01"
