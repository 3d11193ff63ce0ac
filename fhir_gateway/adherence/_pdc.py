"""Proportion of days covered (PDC), pure: fills and hospital stays in, days covered out.

* A **dispense** covers ``days`` days from the day it was handed over. Fills of the same drug
  (the same ``medication`` key) do not overlap: an early refill starts the day after the supply
  already on hand runs out (carried forward). Days in hospital consume no supply (the ward gives
  the medication): the supply is carried over them.
* An **injection** (a long-acting injectable) covers its dosing interval from the day it was
  given, and a **clinic dose** (methadone at the clinic) the days until the next dose is due:
  neither is a stock the patient holds, so neither is carried forward.
* A day is covered for a class when any drug of the class covers it (a switch is no gap).
* The measured period runs from the first day of the window, or the first fill if later, to the
  window's last day; days in hospital are left out of it (numerator and denominator).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

__all__ = [
    "MedicationFill",
    "HospitalStay",
    "PdcCoverage",
    "coverage",
    "hospital_days",
    "days_late",
    "MAX_DAYS",
]

DISPENSE, INJECTION, CLINIC = "dispense", "injection", "clinic"
MAX_DAYS = 366  # the longest supply one fill may claim, and the horizon past the window


@dataclass(frozen=True, slots=True)
class MedicationFill:
    medication: str  # the same drug across fills (carry-forward key)
    start: date
    days: int
    source: str  # "MedicationDispense/1"
    kind: str = DISPENSE  # dispense | injection | clinic


@dataclass(frozen=True, slots=True)
class HospitalStay:
    start: date
    end: date  # inclusive; an ongoing stay ends today


@dataclass(frozen=True, slots=True)
class PdcCoverage:
    start: date  # first measured day
    end: date  # last measured day (the window's)
    days_in_period: int  # the denominator: measured days not in hospital
    days_covered: int
    days_in_hospital: int
    covered_until: date | None  # the last day any fill covers (may lie past ``end``)
    last: MedicationFill | None  # the fill that covers ``covered_until``
    used: tuple[str, ...]  # the fills that covered a measured day, in order

    @property
    def pdc(self) -> float | None:
        if self.days_in_period <= 0:
            return None
        return round(self.days_covered / self.days_in_period, 4)


def hospital_days(stays: Iterable[HospitalStay], first: date, last: date) -> frozenset[date]:
    days: set[date] = set()
    for stay in stays:
        day = max(stay.start, first)
        while day <= min(stay.end, last):
            days.add(day)
            day += timedelta(days=1)
    return frozenset(days)


def _cover(
    fill: MedicationFill, begin: date, hospital: frozenset[date], horizon: date
) -> list[date]:
    """The days ``fill`` covers from ``begin``: a dispense skips hospital days (not consumed)."""
    days: list[date] = []
    day, left = begin, min(fill.days, MAX_DAYS)
    while left > 0 and day <= horizon:
        if fill.kind != DISPENSE or day not in hospital:
            days.append(day)
            left -= 1
        day += timedelta(days=1)
    return days


def coverage(
    fills: Sequence[MedicationFill],
    stays: Sequence[HospitalStay],
    window_start: date,
    window_end: date,
) -> PdcCoverage | None:
    """None when no fill reaches into the window (nothing to measure)."""
    fills = sorted(
        (f for f in fills if f.start <= window_end and f.days > 0),
        key=lambda f: (f.start, f.source),
    )
    if not fills:
        return None
    horizon = window_end + timedelta(days=MAX_DAYS)
    hospital = hospital_days(stays, fills[0].start, horizon)
    start = max(window_start, fills[0].start)
    used: list[str] = []
    covered: dict[date, MedicationFill] = {}
    on_hand: dict[str, date] = {}  # per drug: the first day its supply in hand does not cover
    for fill in fills:
        begin = fill.start
        if fill.kind == DISPENSE:
            begin = max(begin, on_hand.get(fill.medication, begin))
        days = _cover(fill, begin, hospital, horizon)
        if fill.kind == DISPENSE and days:
            on_hand[fill.medication] = days[-1] + timedelta(days=1)
        if any(start <= d <= window_end and d not in hospital for d in days):
            used.append(fill.source)
        for day in days:
            covered.setdefault(day, fill)
            if covered[day].start < fill.start:
                covered[day] = fill  # the newest fill speaks for the day (which source ends it)
    if max(covered, default=window_start - timedelta(days=1)) < window_start:
        return None
    measured = [start + timedelta(days=i) for i in range((window_end - start).days + 1)]
    outside = [d for d in measured if d not in hospital]
    hits = [d for d in outside if d in covered]
    until = max(covered)
    return PdcCoverage(
        start=start,
        end=window_end,
        days_in_period=len(outside),
        days_covered=len(hits),
        days_in_hospital=len(measured) - len(outside),
        covered_until=until,
        last=covered[until],
        used=tuple(dict.fromkeys(used)),
    )


def days_late(covered_until: date, today: date, stays: Sequence[HospitalStay]) -> int:
    """Days since the supply ran out (after ``covered_until``) up to today, hospital days left
    out: a patient on the ward is not late for a refill."""
    if today <= covered_until:
        return 0
    hospital = hospital_days(stays, covered_until, today)
    return sum(
        1
        for i in range(1, min((today - covered_until).days, MAX_DAYS) + 1)
        if covered_until + timedelta(days=i) not in hospital
    )
