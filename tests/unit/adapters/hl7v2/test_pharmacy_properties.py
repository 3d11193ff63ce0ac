"""Property tests of the pharmacy paths: whatever a pharmacy system puts in the RXE, RXD, RXA,
RXR, TQ1 and ORC fields, or however it cuts and repeats the segments, ``convert`` answers with a
transaction Bundle or one of the adapter's HL7 errors (never anything else), and an ACK can be
built for the error; the repeat-pattern and NDC readers never fail and give FHIR-shaped values."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.hl7v2 import HL7Error, build_ack, convert
from adapters.hl7v2._medication_values import normalise_ndc
from adapters.hl7v2._timing import repeat_pattern

DATA = Path(__file__).resolve().parents[3] / "data" / "hl7v2" / "pharmacy"
SEEDS = [p.read_bytes().decode() for p in sorted(DATA.glob("*.hl7"))]
_PIECES = [
    "",
    '""',
    "^",
    "~",
    "&",
    "\\E\\",
    "999",
    "-1",
    "1e9",
    "20261340",
    "2026112014",
    "Q0H",
    "Q99999D",
    "BIDPRN",
    "12496-1208-03",
    "0002-7597-30",
    "^text only drug",
    "1^X^RXNORM~2^Y^NDC",
    "30^d",
    "D0",
    "mg^^UCUM",
    "\x00",
]
_FIELD = st.one_of(st.sampled_from(_PIECES), st.text(max_size=12))
_SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(text: str) -> None:
    try:
        result = convert(text)
    except HL7Error as exc:
        ack = build_ack(text, error=exc)
        assert ack.startswith("MSH|") and "MSA|A" in ack
        return
    assert result.bundle["type"] == "transaction"
    assert result.message_type in ("RDE", "RDS", "RAS")


@_SETTINGS
@given(
    seed=st.sampled_from(SEEDS),
    line=st.integers(min_value=1, max_value=12),
    field=st.integers(min_value=1, max_value=35),
    value=_FIELD,
)
def test_any_field_value_gives_a_bundle_or_an_hl7_error(
    seed: str, line: int, field: int, value: str
) -> None:
    segments = seed.rstrip("\r").split("\r")
    target = segments[min(line, len(segments) - 1)]
    fields = target.split("|")
    fields += [""] * max(0, field + 1 - len(fields))
    fields[field] = value
    segments[min(line, len(segments) - 1)] = "|".join(fields)
    _check("\r".join(segments))


@_SETTINGS
@given(
    seed=st.sampled_from(SEEDS),
    picks=st.lists(st.integers(min_value=0, max_value=11), min_size=0, max_size=30),
)
def test_segments_dropped_reordered_or_repeated_give_a_bundle_or_an_hl7_error(
    seed: str, picks: list[int]
) -> None:
    segments = seed.rstrip("\r").split("\r")
    body = [segments[p % len(segments)] for p in picks if p % len(segments)]
    _check("\r".join([segments[0], *body]))


@given(st.text(max_size=20))
def test_repeat_patterns_never_fail_and_give_positive_schedules(code: str) -> None:
    repeat, _ = repeat_pattern(code)
    if repeat is not None and "period" in repeat:
        assert repeat["period"] > 0 and repeat["frequency"] > 0
        assert repeat["periodUnit"] in ("s", "min", "h", "d", "wk", "mo")


@given(st.from_regex(r"\d{4,5}-\d{3,4}-\d{1,2}", fullmatch=True) | st.text(max_size=14))
def test_ndcs_become_eleven_digits_or_stay_as_sent(code: str) -> None:
    found = normalise_ndc(code)
    if found is not None:
        assert found.isdigit() and len(found) in (10, 11)
        # only zeros are added (to pad each part), nothing else changes
        assert found.replace("0", "") == code.replace("-", "").replace("0", "")
