"""Property tests: whatever bytes arrive, only the adapter's documented errors (the HL7Error tree)
leave ``parse``/``convert``, and an ACK can always be built for them, echoing MSH-10 whenever the
header can be read. Seeded from the Microsoft ADT corpus and mutated the ways senders and
attackers do: cut, spliced, fields replaced with delimiters, escapes, NUL and other controls,
batch wrappers and lone header segments. Bounded (max_examples, no deadline flakiness) so the
run stays a few seconds. PID-3 from an Indian sender: ABHA numbers and addresses in any grouping
and case, under ABDM and other authorities, in any order, land valid under their systems or stay,
as sent, under the sender's own authority; the MR repeat stays the match key."""

from __future__ import annotations

import re

from hl7v2_helpers import MS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.abdm import AbdmSystems, abha_address
from adapters.hl7v2 import (
    ConvertOptions,
    HL7Error,
    SenderProfile,
    build_ack,
    convert,
    parse,
    read_header,
)

SEEDS = [p.read_bytes() for p in sorted((MS / "messages").glob("ADT-A0*-01.hl7"))]

# Pieces that have broken the adapter before, or that sit on its edges.
PIECES = [
    b"MSH",
    b"MSH|",
    b"FTS",
    b"BHS|^~\\&",
    b"BTS|0",
    b"FHS|^~\\&",
    b"DG1|1|I10|^Alcohol dependence",
    b"DG1|1|I10|F10.20^Alcohol dependence^I10||20240101|A||||||||||99999999999999",
    b"PID|1||\\X00\\^^^HOSP^MR||DO\\X00\\E^JOHN",
    b"\x00",
    b"\\X00\\",
    b"\\X0D0A\\",
    b"\\Xzz\\",
    b"\\",
    b"^~\\&",
    b"|" * 30,
    b"\r",
    b"\n",
    b"\x0b",
    b"\x1c\r",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    "é²³٣".encode(),
]

_text = st.binary(max_size=40) | st.sampled_from(PIECES) | st.text(max_size=20).map(str.encode)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """A corpus message, its lines mutated: a line inserted, a field replaced, bytes spliced."""
    lines = draw(st.sampled_from(SEEDS)).replace(b"\r\n", b"\n").replace(b"\n", b"\r").split(b"\r")
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(lines)))
        kind = draw(st.sampled_from(["line", "field", "field", "splice", "cut"]))
        if kind == "line":
            lines.insert(at, draw(st.sampled_from(PIECES)))
        elif kind == "field" and at < len(lines):
            fields = lines[at].split(b"|")
            n = draw(st.integers(1, max(len(fields), 1)))
            fields[n - 1 if n - 1 < len(fields) else -1] = draw(_text)
            lines[at] = b"|".join(fields)
        elif kind == "splice" and at < len(lines):
            i = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:i] + draw(_text) + lines[at][i + draw(st.integers(0, 5)) :]
        elif kind == "cut":
            lines = lines[: max(at, 1)]
    return b"\r".join(lines)


_BOUNDED = settings(
    max_examples=80,
    deadline=None,  # the first call loads the code maps; a bound on time would be flaky on CI
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # the same examples on every run: a failure is reproducible
)


def _msa(ack: str) -> list[str]:
    for segment in ack.split("\r"):
        if segment.startswith("MSA"):
            return segment.split("|")
    raise AssertionError(f"no MSA in {ack!r}")


@_BOUNDED
@given(messages())
def test_only_documented_errors_leave_parse_and_convert(raw: bytes) -> None:
    try:
        parse(raw)
    except HL7Error:
        pass
    try:
        result = convert(raw)
    except HL7Error as exc:
        ack = build_ack(raw, error=exc)
        assert _msa(ack)[1] in ("AE", "AR")
    else:
        ack = build_ack(result.message, "AA", warnings=result.ack_warnings)
        assert _msa(ack)[1] == "AA"
    header = read_header(raw)
    if header is not None and header.name == "MSH" and header.value(10):
        assert _msa(ack)[2], "MSH-10 was readable, MSA-2 must echo it"


@_BOUNDED
@given(st.binary(max_size=300) | st.lists(st.sampled_from(PIECES), max_size=8).map(b"\r".join))
def test_arbitrary_bytes_give_documented_errors_only(raw: bytes) -> None:
    try:
        convert(raw)
    except HL7Error as exc:
        build_ack(raw, error=exc)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.sampled_from(SEEDS), st.sampled_from([b"\\X00\\", b"\x00", b"\x01\x1f", b"\\X0001\\"]))
def test_control_characters_never_reach_a_mapped_value(seed: bytes, dirt: bytes) -> None:
    """Every string in the Bundle is free of characters FHIR and PostgreSQL refuse, and each
    cleaned field is told as an ACK warning."""
    pid = seed.find(b"PID|")
    family = seed.find(
        b"|",
        seed.find(b"|", seed.find(b"|", seed.find(b"|", seed.find(b"|", pid) + 1) + 1) + 1) + 1,
    )
    raw = seed[: family + 1] + dirt + seed[family + 1 :]
    result = convert(raw)
    assert "\x00" not in repr(result.bundle) and not any(
        chr(c) in str(result.bundle) for c in range(32) if c not in (9, 10, 13)
    )
    assert any(w.segment == "PID" and w.field == 5 for w in result.ack_warnings)


# -- PID-3 repeats with ABDM identifiers (Indian senders) -------------------------------------------

_ABDM_AUTHORITIES = {"ABHA": "abha", "PHR": "abha", "HEALTHID": "abha"}
_INDIA = ConvertOptions(
    default_sender=SenderProfile(
        zone="Asia/Kolkata", country="IN", abdm=AbdmSystems(), abdm_authorities=_ABDM_AUTHORITIES
    )
)
_DIGITS = st.text(alphabet="0123456789", min_size=10, max_size=16)
_SPACED = st.builds(
    lambda d, seps: "".join(c + s for c, s in zip(d, seps, strict=False)),
    _DIGITS,
    st.lists(st.sampled_from(["", "", "-", " "]), min_size=16, max_size=16),
)
_ADDRESS = st.from_regex(r"[a-z][a-z0-9._]{2,10}[a-z0-9]@(abdm|sbx|ABDM)", fullmatch=True)
_ABDM_VALUE = _SPACED | _ADDRESS | st.text(alphabet="abc.@_-1", min_size=1, max_size=12)
_AUTHORITY = st.sampled_from(["ABHA", "abha", "PHR", "HEALTHID", "HOSP", "MEDREC"])


@st.composite
def pid3_repeats(draw: st.DrawFn) -> tuple[list[tuple[str, str]], int]:
    """PID-3: one MR id, and ABDM-looking ids under various authorities, in any order."""
    repeats = [("GAN100234", "SPANDANA")]
    repeats += draw(st.lists(st.tuples(_ABDM_VALUE, _AUTHORITY), max_size=4))
    order = draw(st.permutations(range(len(repeats))))
    return [repeats[i] for i in order], order.index(0)


def _pid3_message(repeats: list[tuple[str, str]], mr_at: int) -> str:
    field = "~".join(
        f"{v}^^^{a}^{'MR' if i == mr_at else 'NH'}" for i, (v, a) in enumerate(repeats)
    )
    return (
        "MSH|^~\\&|BAHMNI|SPANDANA|GW|GW|20261201093000||ADT^A01^ADT_A01|P3|P|2.5.1\r"
        "EVN|A01|20261201093000\r"
        f"PID|1||{field}||Gowda^Meena||19910807|F\r"
        "PV1|1|I|PSY-W^12^1^SPANDANA|||||||PSY|||||||||IP1^^^SPANDANA^VN\r"
    )


@settings(max_examples=120, deadline=None, derandomize=True)
@given(pid3_repeats())
def test_pid3_abdm_repeats_are_valid_under_their_systems_or_kept_locally(drawn) -> None:  # type: ignore[no-untyped-def]
    repeats, mr_at = drawn
    result = convert(_pid3_message(repeats, mr_at), options=_INDIA)
    [patient] = [
        e["resource"] for e in result.bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    ]
    systems = AbdmSystems()
    kept = {(i.get("system"), i["value"]) for i in patient["identifier"]}
    for value, authority in repeats:
        value = value.strip()
        if not value or "^" in value or "~" in value or "&" in value or "\\" in value:
            continue
        if authority.upper() in _ABDM_AUTHORITIES and systems.abha(value) is not None:
            assert systems.abha(value) in kept  # under its system, normalised
        elif authority.upper() in _ABDM_AUTHORITIES:
            assert (f"urn:fhir-gateway:hl7v2:assigning-authority:{authority}", value) in kept
            assert any(w.segment == "PID" and w.field == 3 for w in result.ack_warnings)
    for system, value in kept:
        if system == systems.abha_number:
            assert re.fullmatch(r"\d{2}-\d{4}-\d{4}-\d{4}", value)
        elif system == systems.abha_address:
            assert abha_address(value) == value
    key = next(e for e in result.bundle["entry"] if e["request"].get("url") == "Patient")
    assert key["request"]["ifNoneExist"].endswith("|GAN100234")  # the MR repeat is the key
