"""When the messages go (pure): the PlanDefinition's action timings read from the discharge.

An action's ``timingTiming.repeat`` is read as: the first message ``boundsRange.low`` after the
discharge day, then one every ``period`` ``periodUnit``, the last at or before ``boundsRange.high``;
at the first ``timeOfDay`` (default 10:00) in the discharging facility's zone. Units (UCUM): d, wk,
mo (calendar months: the 31st becomes the month's last day), a. Days count calendar days in the
facility's zone, the discharge day being day 0, as the care-plan templates count them.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["MAX_MESSAGES", "ScheduleError", "occurrences"]

MAX_MESSAGES = 400  # a schedule beyond this is a mistake in the data (daily for a year and more)
_UNITS = {"d", "wk", "mo", "a"}


class ScheduleError(ValueError):
    """The schedule cannot be read; the text says which action and why."""


def occurrences(plan: dict[str, Any], discharged: datetime, zone: str) -> list[datetime]:
    """The instants (UTC-aware, sorted, without repeats) the plan's actions give."""
    tz = ZoneInfo(zone)
    day0 = discharged.astimezone(tz).date()
    found: set[datetime] = set()
    for index, action in enumerate(plan.get("action") or []):
        repeat = (action.get("timingTiming") or {}).get("repeat") or {}
        where = f"action[{index}] ({action.get('id') or action.get('title') or 'unnamed'})"
        for day in _days(repeat, day0, where):
            found.add(datetime.combine(day, _time_of_day(repeat, where), tz))
            if len(found) > MAX_MESSAGES:
                raise ScheduleError(f"more than {MAX_MESSAGES} messages: check {where}")
    return sorted(moment.astimezone(ZoneInfo("UTC")) for moment in found)


def _days(repeat: dict[str, Any], day0: date, where: str) -> list[date]:
    bounds = repeat.get("boundsRange") or {}
    low, high = _quantity(bounds.get("low"), where), _quantity(bounds.get("high"), where)
    period = repeat.get("period")
    unit = repeat.get("periodUnit")
    if not isinstance(period, int | float) or period <= 0 or unit not in _UNITS:
        raise ScheduleError(f"{where}: needs a positive period and a periodUnit of d, wk, mo or a")
    last = _add(day0, *high)
    days: list[date] = []
    step = 0
    while len(days) <= MAX_MESSAGES:
        day = _add(_add(day0, *low), period * step, str(unit))
        if day > last:
            return days
        days.append(day)
        step += 1
    raise ScheduleError(f"more than {MAX_MESSAGES} messages: check {where}")


def _quantity(value: dict[str, Any] | None, where: str) -> tuple[float, str]:
    if (
        not value
        or not isinstance(value.get("value"), int | float)
        or value.get("code") not in _UNITS
    ):
        raise ScheduleError(f"{where}: boundsRange needs low and high in d, wk, mo or a")
    return float(value["value"]), str(value["code"])


def _add(day: date, amount: float, unit: str) -> date:
    if unit == "d":
        return day + timedelta(days=int(amount))
    if unit == "wk":
        return day + timedelta(weeks=int(amount))
    months = int(amount) * (12 if unit == "a" else 1)
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _time_of_day(repeat: dict[str, Any], where: str) -> time:
    values = repeat.get("timeOfDay") or ["10:00:00"]
    try:
        return time.fromisoformat(str(values[0]))
    except ValueError as exc:
        raise ScheduleError(f"{where}: timeOfDay {values[0]!r} is not a time") from exc
