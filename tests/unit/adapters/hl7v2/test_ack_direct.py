"""The plain ACK (no ERR, no MSA-3) is written out without hl7apy: byte for byte what hl7apy
writes, whatever the sender put in the fields the ACK mirrors (odd values go through hl7apy)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.hl7v2 import build_ack, parse
from adapters.hl7v2._ack import _direct, _header_fields, _version, _with_hl7apy

WHEN = datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC)

# Sender field text: plain words, separators, blanks, escapes and non-ASCII.
_FIELD = st.text(alphabet=st.sampled_from("Ab9 .-_:/é^&~\\#"), max_size=12)


def _by_hl7apy(raw: str, code: str, control_id: str | None, when: datetime) -> str:
    header = parse(raw).msh
    fields = _header_fields(header, control_id, when)
    return _with_hl7apy(fields, code, header, _version(header), None, "", ())


def _msh(apps: list[str], event: str, control: str, processing: str, version: str) -> str:
    escaped = [a.replace("\\", "\\E\\").replace("~", "\\R\\") for a in apps]
    control = control.replace("\\", "\\E\\").replace("~", "\\R\\").replace("^", "\\S\\")
    return (
        f"MSH|^~\\&|{'|'.join(escaped)}|20240101||ADT^{event}^ADT_A01|{control}"
        f"|{processing}|{version}\rEVN|{event}|20240101\rPID|1||123^^^H^MR\r"
    )


@settings(max_examples=600, deadline=None)
@given(
    apps=st.lists(_FIELD, min_size=4, max_size=4),
    event=st.sampled_from(["A01", "A08", "", "A 1", "é"]),
    control=_FIELD,
    processing=st.sampled_from(["P", "T", "", "D^T", " "]),
    version=st.sampled_from(
        ["2.3", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.8", "2.8.2", "9.9", ""]
    ),
    code=st.sampled_from(["AA", "AE", "AR"]),
    control_id=st.sampled_from([None, "ACK1", "A^B", "A~B"]),
    offset=st.sampled_from([0, 330, -300]),
)
def test_direct_ack_is_what_hl7apy_writes(
    apps, event, control, processing, version, code, control_id, offset
):
    raw = _msh(apps, event, control, processing, version)
    when = WHEN.astimezone(timezone(timedelta(minutes=offset)))
    ack = build_ack(raw, code, control_id=control_id or "X1", timestamp=when)
    assert ack == _by_hl7apy(raw, code, control_id or "X1", when)


def test_an_ordinary_admission_is_answered_directly():
    raw = _msh(["APP", "FAC^1.2.3^ISO", "GW", "GWFAC"], "A01", "CTRL1", "P", "2.5.1")
    header = parse(raw).msh
    direct = _direct(_header_fields(header, "ACK1", WHEN), "AA", header, "2.5.1")
    assert direct == (
        "MSH|^~\\&|GW|GWFAC|APP|FAC^1.2.3^ISO|20240304050607+0000||ACK^A01^ACK|ACK1|P|2.5.1\r"
        "MSA|AA|CTRL1\r"
    )
    assert build_ack(raw, "AA", control_id="ACK1", timestamp=WHEN) == direct


def test_fields_hl7apy_rewrites_still_go_through_it():
    # a trailing component separator, which hl7apy drops from MSH-3
    raw = _msh(["APP^", "FAC", "GW", "GWFAC"], "A01", "CTRL1", "P", "2.5")
    header = parse(raw).msh
    assert _direct(_header_fields(header, "ACK1", WHEN), "AA", header, "2.5") is None
    ack = build_ack(raw, "AA", control_id="ACK1", timestamp=WHEN)
    assert ack.split("\r")[0].split("|")[4] == "APP"


def test_without_a_header_the_generic_ack_is_direct_and_the_same():
    ack = build_ack(None, "AR", control_id="X", timestamp=WHEN)
    assert ack == "MSH|^~\\&|||||20240304050607+0000||ACK|X|P|2.5\rMSA|AR|\r"
    fields = _header_fields(None, "X", WHEN)
    assert ack == _with_hl7apy(fields, "AR", None, "2.5", None, "", ())
