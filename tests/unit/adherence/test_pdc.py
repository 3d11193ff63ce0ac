"""The proportion of days covered, worked by hand and by the calculator (pure: no database)."""

from __future__ import annotations

from datetime import date, timedelta

from fhir_gateway.adherence import HospitalStay, MedicationFill, coverage, days_late

QUETIAPINE, OLANZAPINE = "rxnorm|51272", "rxnorm|61381"


def d(month: int, day: int, year: int = 2026) -> date:
    return date(year, month, day)


def test_hand_worked_example_overlapping_fills_early_refill_and_a_hospital_stay():
    """Window 1 January – 1 March 2026: 31 + 28 + 1 = 60 days.

    Fills (antipsychotics):
      F1 quetiapine, 20 December 2025, 30 days: 20 Dec – 18 Jan (18 of them in the window).
      F2 quetiapine, 10 January, 30 days: an early refill (9 days' supply still in hand), so it
         starts on 19 January, the day after F1 runs out (carried forward).
         Hospital stay 1–5 February (5 days): the ward gives the medication, so F2's supply is
         not used up on those days: 19–31 January (13 days) + 6–22 February (17 days) = 30.
      F4 olanzapine, 5 January, 14 days: 5–18 January, overlapping F1. Another drug of the
         class: it is not carried forward behind quetiapine (a switch or a combination), and it
         adds no day that F1 does not already cover.
      Gap: 23, 24, 25 February (3 days).
      F3 quetiapine, 26 February, 30 days: 26 February – 27 March; 26, 27, 28 February and
         1 March are in the window (4 days).

    Measured period: 1 January (the window's first day; F1 came before it) to 1 March = 60 days,
    less the 5 hospital days = 55 days (denominator).
    Covered: 1–31 January (31) + 6–22 February (17) + 26 February – 1 March (4) = 52 days.
    PDC = 52 / 55 = 0.9455 (rounded to 4 places).
    Without the carry-forward, F2 would cover 10 January – 8 February and the gap would be
    9–25 February: the early refill would be wrongly counted as 17 lost days.
    """
    fills = [
        MedicationFill(QUETIAPINE, d(12, 20, 2025), 30, "MedicationDispense/f1"),
        MedicationFill(QUETIAPINE, d(1, 10), 30, "MedicationDispense/f2"),
        MedicationFill(QUETIAPINE, d(2, 26), 30, "MedicationDispense/f3"),
        MedicationFill(OLANZAPINE, d(1, 5), 14, "MedicationDispense/f4"),
    ]
    result = coverage(fills, [HospitalStay(d(2, 1), d(2, 5))], d(1, 1), d(3, 1))
    assert result is not None
    assert result.start == d(1, 1)
    assert result.days_in_hospital == 5
    assert result.days_in_period == 55
    assert result.days_covered == 52
    assert result.pdc == 0.9455
    assert result.covered_until == d(3, 27)  # F3's supply lasts to 27 March
    assert result.last is not None and result.last.source == "MedicationDispense/f3"
    assert set(result.used) == {f"MedicationDispense/f{i}" for i in (1, 2, 3, 4)}


def test_the_period_starts_at_the_first_fill_when_it_falls_inside_the_window():
    fills = [MedicationFill(QUETIAPINE, d(2, 1), 10, "MedicationDispense/a")]
    result = coverage(fills, [], d(1, 1), d(2, 20))
    assert result is not None
    assert (result.start, result.days_in_period, result.days_covered) == (d(2, 1), 20, 10)
    assert result.pdc == 0.5


def test_a_fill_that_ended_before_the_window_measures_nothing():
    fills = [MedicationFill(QUETIAPINE, d(10, 1, 2025), 30, "MedicationDispense/old")]
    assert coverage(fills, [], d(1, 1), d(3, 1)) is None


def test_an_injection_covers_its_interval_and_is_not_carried_forward():
    """Paliperidone palmitate monthly on 2 January and 28 January (2 days early): each covers 28
    days from the day it is given, so 2 January – 24 February is covered without a gap, and the
    early injection does not push the cover out to 26 February."""
    fills = [
        MedicationFill("lai", d(1, 2), 28, "MedicationAdministration/1", "injection"),
        MedicationFill("lai", d(1, 28), 28, "MedicationAdministration/2", "injection"),
    ]
    result = coverage(fills, [], d(1, 1), d(2, 24))
    assert result is not None
    assert (result.days_in_period, result.days_covered, result.pdc) == (54, 54, 1.0)
    assert result.covered_until == d(2, 24)


def test_clinic_doses_cover_the_days_they_are_given():
    """Methadone dosed at the clinic every day for 30 days: fully covered, no gap."""
    fills = [
        MedicationFill(
            "methadone", d(1, 1) + timedelta(days=i), 1, f"MedicationAdministration/{i}", "clinic"
        )
        for i in range(30)
    ]
    result = coverage(fills, [], d(1, 1), d(1, 30))
    assert result is not None and result.pdc == 1.0


def test_days_late_leave_out_days_in_hospital():
    # supply ran out after 10 February; today 20 February; in hospital 12–14 February
    assert days_late(d(2, 10), d(2, 20), []) == 10
    assert days_late(d(2, 10), d(2, 20), [HospitalStay(d(2, 12), d(2, 14))]) == 7
    assert days_late(d(2, 10), d(2, 9), []) == 0
