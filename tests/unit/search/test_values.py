from __future__ import annotations

import unicodedata
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_gateway.search.values import date_range, normalize, number_range, split_reference


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("2024", datetime(2024, 1, 1), datetime(2025, 1, 1)),
        ("2024-03", datetime(2024, 3, 1), datetime(2024, 4, 1)),
        ("2024-12", datetime(2024, 12, 1), datetime(2025, 1, 1)),
        ("2024-02-29", datetime(2024, 2, 29), datetime(2024, 3, 1)),
        ("2024-03-05T10:00", datetime(2024, 3, 5, 10), datetime(2024, 3, 5, 10, 1)),
        ("2024-03-05T10:00:00Z", datetime(2024, 3, 5, 10), datetime(2024, 3, 5, 10, 0, 1)),
        ("2024-03-05T10:00:00+02:00", datetime(2024, 3, 5, 8), datetime(2024, 3, 5, 8, 0, 1)),
        (
            "2024-03-05T10:00:00.5-01:00",
            datetime(2024, 3, 5, 11, 0, 0, 500000),
            datetime(2024, 3, 5, 11, 0, 0, 600000),
        ),
    ],
)
def test_date_range_honours_precision_and_offset(text: str, low: datetime, high: datetime) -> None:
    assert date_range(text) == (low, high)


@pytest.mark.parametrize(
    "text", ["", "24-01-01", "2024-13", "2024-02-30", "yesterday", "2024-01-01T25:00"]
)
def test_date_range_rejects_what_is_not_a_fhir_date(text: str) -> None:
    with pytest.raises(ValueError):
        date_range(text)


def test_number_range_uses_implicit_precision() -> None:
    assert number_range("100") == (Decimal(100), Decimal("99.5"), Decimal("100.5"))
    assert number_range("100.00") == (Decimal("100.00"), Decimal("99.995"), Decimal("100.005"))
    assert number_range("1e2")[1:] == (Decimal(50), Decimal(150))
    with pytest.raises(ValueError):
        number_range("NaN")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_an_ascii_text_is_normalised_as_any_other(text: str) -> None:
    # ASCII takes a shortcut (nothing to decompose); it must land where the general path does
    decomposed = unicodedata.normalize("NFKD", text)
    folded = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    assert normalize(text) == " ".join(folded.casefold().split())


def test_normalize_folds_case_accents_and_spaces() -> None:
    assert normalize("  Müller-Łódź  ÉVE ") == normalize("muller-łodz eve")
    assert normalize("Ångström") == "angstrom"


def test_split_reference() -> None:
    assert split_reference("Patient/1") == ("Patient", "1")
    assert split_reference("Patient/1/_history/3") == ("Patient", "1")
    assert split_reference("#contained") == (None, None)
    assert split_reference("http://other/fhir/Patient/1") == (None, None)
