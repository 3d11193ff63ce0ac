"""Whole numbers from the wire: ASCII digits only, bounded, never an exception."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fhir_gateway.fhir.numbers import MAX_INT32, whole_number


def test_digits_within_the_ceiling_are_their_value():
    assert whole_number("0", ceiling=10) == 0
    assert whole_number("007", ceiling=10) == 7
    assert whole_number("10", ceiling=10) == 10


def test_larger_numbers_stop_at_the_ceiling_however_long():
    assert whole_number("11", ceiling=10) == 10
    assert whole_number("99999999999999999999999", ceiling=MAX_INT32) == MAX_INT32
    assert whole_number("9" * 5000, ceiling=MAX_INT32) == MAX_INT32  # int() refuses 4,301+ digits


def test_anything_but_ascii_digits_is_not_a_number():
    for text in ("", "-1", "+1", "1e3", "1.0", " 1", "²", "١٢", "0x10"):
        assert whole_number(text, ceiling=MAX_INT32) is None


@given(st.text())
def test_any_text_gives_a_bounded_number_or_none(text):
    value = whole_number(text, ceiling=1000)
    assert value is None or 0 <= value <= 1000
