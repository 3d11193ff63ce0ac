"""HL7 v2 timing → FHIR Timing and Duration: TQ1 (v2.5 on) and the TQ of RXE-1/ORC-7 (v2.3).

The repeat pattern (table 0335) is a small grammar, read here: ``QD``, ``BID``, ``TID``, ``QID``,
``<n>ID``, ``Q<n>S|M|H|D|W|L`` (seconds, minutes, hours, days, weeks, months), ``QOD``, ``QAM``,
``QPM``, ``QHS``, ``ONCE``, each optionally followed by ``PRN`` (as needed), and ``PRN`` alone.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["repeat_pattern", "duration", "tq_duration", "UCUM"]

UCUM = "http://unitsofmeasure.org"
_MAX_COUNT = 10_000  # a larger interval multiplier or count is no dosing schedule
_EVERY = re.compile(r"Q(\d{1,4})([SMHDWL])\Z")
_TIMES_A_DAY = re.compile(r"(\d{1,2})ID\Z")
_UNIT = {"S": "s", "M": "min", "H": "h", "D": "d", "W": "wk", "L": "mo"}
_NAMED: dict[str, dict[str, Any]] = {
    "QD": {"frequency": 1, "period": 1, "periodUnit": "d"},
    "BID": {"frequency": 2, "period": 1, "periodUnit": "d"},
    "TID": {"frequency": 3, "period": 1, "periodUnit": "d"},
    "QID": {"frequency": 4, "period": 1, "periodUnit": "d"},
    "QOD": {"frequency": 1, "period": 2, "periodUnit": "d"},
    "QAM": {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["MORN"]},
    "QPM": {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["EVE"]},
    "QHS": {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["HS"]},
    "ONCE": {"count": 1},
}
# Durations as senders write their units (CQ units, TQ.3 letters) → UCUM.
_DURATION_UNITS = {
    "s": "s",
    "min": "min",
    "h": "h",
    "hr": "h",
    "d": "d",
    "day": "d",
    "days": "d",
    "wk": "wk",
    "week": "wk",
    "weeks": "wk",
    "mo": "mo",
    "month": "mo",
    "months": "mo",
}
_UNIT_NAMES = {
    "s": "seconds",
    "min": "minutes",
    "h": "hours",
    "d": "days",
    "wk": "weeks",
    "mo": "months",
}
_TQ_DURATION = re.compile(r"([SMHDWL])(\d{1,4})\Z")


def repeat_pattern(code: str) -> tuple[dict[str, Any] | None, bool]:
    """(Timing.repeat, as needed) of a table 0335 repeat pattern; (None, False) when unknown."""
    code = code.strip().upper().replace(" ", "")
    if not code:
        return None, False
    prn = code.endswith("PRN")
    if prn:
        code = code[:-3]
        if not code:
            return None, True
    if code in _NAMED:
        return dict(_NAMED[code]), prn
    every = _EVERY.match(code)
    if every and 0 < int(every.group(1)) <= _MAX_COUNT:
        return {
            "frequency": 1,
            "period": int(every.group(1)),
            "periodUnit": _UNIT[every.group(2)],
        }, prn
    times = _TIMES_A_DAY.match(code)
    if times and 0 < int(times.group(1)) <= 24:
        return {"frequency": int(times.group(1)), "period": 1, "periodUnit": "d"}, prn
    return None, prn


def duration(value: str, unit: str) -> dict[str, Any] | None:
    """A positive number and a time unit (CQ: ``30^d``) → Duration; None when either is unusable."""
    code = _DURATION_UNITS.get(unit.strip().lower()) or _DURATION_UNITS.get(unit.strip())
    number = _number(value)
    if code is None or number is None or number <= 0:
        return None
    return {"value": number, "unit": _UNIT_NAMES[code], "system": UCUM, "code": code}


def tq_duration(text: str) -> dict[str, Any] | None:
    """TQ.3 duration (``D30`` thirty days, ``W4``, ``L1``; v2.3) → Duration, or None."""
    m = _TQ_DURATION.match(text.strip().upper())
    if not m or int(m.group(2)) == 0:
        return None
    code = _UNIT[m.group(1)]
    return {"value": int(m.group(2)), "unit": _UNIT_NAMES[code], "system": UCUM, "code": code}


def _number(text: str) -> int | float | None:
    text = text.strip()
    if not re.fullmatch(r"\d{1,9}(\.\d{1,6})?", text):
        return None
    return float(text) if "." in text else int(text)
