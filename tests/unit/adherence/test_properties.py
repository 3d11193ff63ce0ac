"""Property tests of the pure parts: whatever numbers and units a pharmacy or prescriber sends,
days' supply is a bounded whole number of days or an explanation, never an error; and a PDC is a
proportion of the days measured."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_gateway.adherence import HospitalStay, MedicationFill, coverage, days_supply
from fhir_gateway.adherence._supply import interval_days

numbers = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)
units = st.one_of(st.none(), st.sampled_from(["TAB", "tablet", "mL", "mg", "{tbl}", "", "d", "h"]))
timings = st.fixed_dictionaries(
    {},
    optional={
        "repeat": st.fixed_dictionaries(
            {},
            optional={
                "frequency": numbers,
                "period": numbers,
                "periodUnit": st.sampled_from(["s", "min", "h", "d", "wk", "mo", "a", "x"]),
            },
        ),
        "code": st.fixed_dictionaries(
            {"coding": st.lists(st.fixed_dictionaries({"code": st.text(max_size=5)}), max_size=2)}
        ),
    },
)
dosages = st.fixed_dictionaries(
    {},
    optional={
        "timing": timings,
        "asNeededBoolean": st.booleans(),
        "doseAndRate": st.lists(
            st.fixed_dictionaries(
                {"doseQuantity": st.fixed_dictionaries({"value": numbers, "unit": units})}
            ),
            max_size=2,
        ),
    },
)
requests = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"resourceType": st.just("MedicationRequest")},
        optional={"dosageInstruction": st.lists(dosages, max_size=3)},
    ),
)
dispenses = st.fixed_dictionaries(
    {"resourceType": st.just("MedicationDispense")},
    optional={
        "daysSupply": st.fixed_dictionaries({"value": numbers}),
        "quantity": st.fixed_dictionaries({"value": numbers, "unit": units}),
    },
)


@settings(max_examples=50, deadline=None)
@given(dispenses, requests)
def test_days_supply_is_bounded_days_or_says_what_is_missing(
    dispense: dict[str, Any], request: dict[str, Any] | None
) -> None:
    supplied = days_supply(dispense, request)
    if supplied.days is None:
        assert supplied.missing
    else:
        assert 1 <= supplied.days <= 366
    assert 1 <= interval_days(request) <= 366


fills = st.lists(
    st.builds(
        MedicationFill,
        medication=st.sampled_from(["a", "b"]),
        start=st.dates(date(2025, 6, 1), date(2026, 3, 1)),
        days=st.integers(min_value=1, max_value=120),
        source=st.integers(0, 30).map(lambda n: f"MedicationDispense/{n}"),
        kind=st.sampled_from(["dispense", "injection", "clinic"]),
    ),
    max_size=12,
)
stays = st.lists(
    st.dates(date(2025, 6, 1), date(2026, 3, 1)).flatmap(
        lambda s: st.integers(0, 20).map(lambda n: HospitalStay(s, s + timedelta(days=n)))
    ),
    max_size=3,
)


@settings(max_examples=40, deadline=None)
@given(fills, stays)
def test_a_pdc_is_a_proportion_of_the_days_measured(
    found: list[MedicationFill], ward: list[HospitalStay]
) -> None:
    start, end = date(2025, 9, 3), date(2026, 3, 1)
    result = coverage(found, ward, start, end)
    if result is None:
        return
    assert 0 <= result.days_covered <= result.days_in_period
    assert result.days_in_period + result.days_in_hospital == (end - result.start).days + 1
    assert result.pdc is None or 0.0 <= result.pdc <= 1.0
    assert set(result.used) <= {f.source for f in found}
