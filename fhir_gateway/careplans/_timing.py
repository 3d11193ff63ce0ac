"""Due dates and windows relative to a discharge, in the discharging facility's local zone.

Days are calendar days in that zone and the discharge day is day 0, so ``1..7 d`` is the HEDIS FUH
window: from the start of the day after discharge to the end of the seventh day. Hours count from
the discharge instant (``0..72 h``: the 72 hours after discharge).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fhir_gateway.careplans._fhirpath import TemplateError

__all__ = ["Window", "window", "due_date", "fhir_datetime"]

_END_OF_DAY = time(23, 59, 59)


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime

    def to_period(self) -> dict[str, str]:
        return {"start": fhir_datetime(self.start), "end": fhir_datetime(self.end)}


def fhir_datetime(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def _unit(quantity: dict[str, Any]) -> str:
    return str(quantity.get("code") or quantity.get("unit") or "d")


def _value(quantity: dict[str, Any]) -> int:
    value = quantity.get("value", 0)
    if not isinstance(value, int | float) or value < 0:
        raise TemplateError(f"Timing value {value!r} is not a non-negative number")
    return int(value)


def _local_day(day: date, at: time, zone: Any) -> datetime:
    return datetime.combine(day, at, tzinfo=zone)


def _bound(discharged: datetime, quantity: dict[str, Any], *, end: bool) -> datetime:
    unit, n = _unit(quantity), _value(quantity)
    if unit in ("h", "hours", "hour"):
        return _elapsed(discharged, n)
    day = _add(discharged.date(), n, unit)
    return _local_day(day, _END_OF_DAY if end else time(0), discharged.tzinfo)


def _elapsed(start: datetime, hours: int) -> datetime:
    # Hours elapsed, not wall-clock: aware arithmetic in one zone ignores a DST change between.
    return (start.astimezone(UTC) + timedelta(hours=hours)).astimezone(start.tzinfo)


def _add(day: date, n: int, unit: str) -> date:
    if unit in ("d", "days", "day"):
        return day + timedelta(days=n)
    if unit in ("wk", "weeks", "week"):
        return day + timedelta(weeks=n)
    if unit in ("mo", "months", "month", "a", "years", "year"):
        months = n * 12 if unit in ("a", "years", "year") else n
        year, month = divmod(day.month - 1 + months, 12)
        year, month = day.year + year, month + 1
        return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
    raise TemplateError(f"Unsupported time unit {unit!r} (use h, d, wk, mo or a)")


def window(discharged: datetime, activity: dict[str, Any]) -> Window | None:
    """The window of an ActivityDefinition's ``timingRange`` / ``timingDuration`` (from day 0)."""
    if "timingRange" in activity:
        rng = activity["timingRange"]
        low = rng.get("low") or {"value": 0, "code": _unit(rng.get("high") or {})}
        return Window(_bound(discharged, low, end=False), _bound(discharged, rng["high"], end=True))
    if "timingDuration" in activity:
        return Window(discharged, _bound(discharged, activity["timingDuration"], end=True))
    return None


def due_date(discharged: datetime, duration: dict[str, Any]) -> date:
    """A Goal's target date: the discharge's local date plus the duration."""
    unit = _unit(duration)
    if unit in ("h", "hours", "hour"):
        return _elapsed(discharged, _value(duration)).date()
    return _add(discharged.date(), _value(duration), unit)
