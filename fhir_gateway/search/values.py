"""Pure value helpers shared by extraction (write side) and query parsing (read side).

Dates become half-open ``[low, high)`` ranges in naive UTC honouring their precision (``2024-03``
is the whole of March); numbers carry their implicit precision (``100`` is ``[99.5, 100.5)``);
strings are folded (lowercase, accents removed) so that ``Müller`` finds ``muller``.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

__all__ = [
    "MIN_TIME",
    "MAX_TIME",
    "STRING_LEN",
    "TOKEN_CODE_LEN",
    "TOKEN_SYSTEM_LEN",
    "URI_LEN",
    "ID_LEN",
    "normalize",
    "clip",
    "date_range",
    "number_range",
    "split_reference",
    "to_naive_utc",
    "TYPE_LEN",
]

MIN_TIME = datetime(1, 1, 1)
MAX_TIME = datetime(9999, 12, 31, 23, 59, 59)

# Column widths of the index tables: values are clipped the same way on write and on search.
STRING_LEN = 256
TOKEN_CODE_LEN = 256
TOKEN_SYSTEM_LEN = 512
URI_LEN = 1024
ID_LEN = 64
TYPE_LEN = 64

_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?P<f>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def normalize(text: str) -> str:
    """Case- and accent-insensitive form of a string, for the default string search."""
    if text.isascii():  # nothing to decompose (most names and codes): the same, cheaper
        return " ".join(text.lower().split())
    decomposed = unicodedata.normalize("NFKD", text)
    folded = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(folded.casefold().split())


def clip(text: str | None, length: int) -> str | None:
    return text[:length] if text is not None else None


def date_range(text: str) -> tuple[datetime, datetime]:
    """``[low, high)`` in naive UTC for a FHIR date, dateTime or instant (no zone: UTC).

    Raises ValueError for anything else.
    """
    match = _DATE.match(text.strip())
    if not match:
        raise ValueError(f"not a FHIR date: {text!r}")
    g = match.groupdict()
    year = int(g["y"])
    step: tuple[str, object]
    if g["m"] is None:
        low, step = datetime(year, 1, 1), ("year", 1)
    elif g["d"] is None:
        low, step = datetime(year, int(g["m"]), 1), ("month", 1)
    elif g["H"] is None:
        low, step = datetime(year, int(g["m"]), int(g["d"])), ("delta", timedelta(days=1))
    else:
        seconds = int(g["S"] or 0)
        micro = 0
        if g["f"]:
            digits = g["f"][1:7]
            micro = int(digits.ljust(6, "0"))
        low = datetime(year, int(g["m"]), int(g["d"]), int(g["H"]), int(g["M"]), seconds, micro)
        if g["f"]:
            step = ("delta", timedelta(microseconds=10 ** (6 - min(len(g["f"]) - 1, 6))))
        elif g["S"] is not None:
            step = ("delta", timedelta(seconds=1))
        else:
            step = ("delta", timedelta(minutes=1))
        if g["tz"] and g["tz"] != "Z":
            sign = 1 if g["tz"][0] == "+" else -1
            hours, minutes = int(g["tz"][1:3]), int(g["tz"][4:6])
            try:
                low = low - sign * timedelta(hours=hours, minutes=minutes)
            except OverflowError:
                low = MIN_TIME if sign > 0 else MAX_TIME
    return low, _advance(low, step)


def _advance(low: datetime, step: tuple[str, object]) -> datetime:
    kind, amount = step
    try:
        if kind == "year":
            return low.replace(year=low.year + 1)
        if kind == "month":
            if low.month == 12:
                return low.replace(year=low.year + 1, month=1)
            return low.replace(month=low.month + 1)
        assert isinstance(amount, timedelta)
        return low + amount
    except (ValueError, OverflowError):
        return MAX_TIME


def to_naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def number_range(text: str) -> tuple[Decimal, Decimal, Decimal]:
    """(value, low, high) with the implicit precision of how the number is written."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a number: {text!r}")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5) * Decimal(10) ** (exponent - 1)
    return value, value - half, value + half


def split_reference(reference: str) -> tuple[str | None, str | None]:
    """(type, id) of a relative literal reference ``Type/id`` or ``Type/id/_history/v``."""
    parts = reference.split("/")
    if len(parts) == 4 and parts[2] == "_history":
        parts = parts[:2]
    if len(parts) == 2 and parts[0] and parts[1] and parts[0][:1].isupper():
        return parts[0], parts[1]
    return None, None
