"""HL7 DTM/TS/DT → FHIR date/dateTime/instant.

The sender's offset is kept as sent (never shifted to the server's zone) and so is the precision:
a year or a year-month stays so, a value with a time gets its seconds padded (FHIR needs them),
and a time sent without an offset takes the sender's configured zone (FHIR needs an offset).
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = ["to_fhir_date", "to_fhir_datetime", "to_fhir_instant"]

_DTM = re.compile(
    r"(\d{4})(\d{2})?(\d{2})?(?:(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,4}))?)?\s*(?:([+-])(\d{2})(\d{2}))?\Z"
)


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _match(value: str) -> re.Match[str]:
    m = _DTM.match(value.strip())
    if m is None:
        raise ValueError(f"{value!r} is not an HL7 date/time")
    y, mo, d, hh, mi, ss = (int(g) if g else None for g in m.groups()[:6])
    if mo is not None and not 1 <= mo <= 12:
        raise ValueError(f"{value!r}: month {mo}")
    if d is not None:
        datetime(y or 1, mo or 1, d)  # raises ValueError on 20210230
    if (hh or 0) > 23 or (mi or 0) > 59 or (ss or 0) > 59:
        raise ValueError(f"{value!r}: time out of range")
    return m


def to_fhir_date(value: str) -> str:
    """FHIR ``date``: the date part only, at the precision sent."""
    m = _match(value)
    y, mo, d = m.group(1, 2, 3)
    return "-".join(p for p in (y, mo, d) if p)


def to_fhir_datetime(value: str, zone: str = "UTC") -> str:
    """FHIR ``dateTime``: date alone stays a date; with a time, seconds and an offset are added."""
    m = _match(value)
    y, mo, d, hh, mi, ss, frac, sign, oh, om = m.groups()
    if hh is None or d is None:
        return "-".join(p for p in (y, mo, d) if p)
    clock = f"{hh}:{mi or '00'}:{ss or '00'}" + (f".{frac}" if frac else "")
    if sign:
        offset = f"{sign}{oh}:{om}"
    else:
        local = datetime(int(y), int(mo), int(d), int(hh), int(mi or 0), int(ss or 0))
        offset = _offset(local, zone)
    return f"{y}-{mo}-{d}T{clock}{offset}"


def to_fhir_instant(value: str, zone: str = "UTC") -> str:
    """FHIR ``instant``: like dateTime, but a bare date becomes midnight in the sender's zone."""
    m = _match(value)
    y, mo, d = m.group(1, 2, 3)
    if m.group(4) is None:
        return to_fhir_datetime(f"{y}{mo or '01'}{d or '01'}000000", zone)
    return to_fhir_datetime(value, zone)


def _offset(local: datetime, zone: str) -> str:
    delta = local.replace(tzinfo=_zone(zone)).utcoffset()
    minutes = int(delta.total_seconds() // 60) if delta else 0
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
