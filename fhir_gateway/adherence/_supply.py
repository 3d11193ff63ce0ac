"""Days' supply of a dispense, pure: ``MedicationDispense.daysSupply`` when sent, else the amount
dispensed divided by the daily dose of the order that authorised it (its ``dosageInstruction``:
dose × times a day). When neither can be known the answer says exactly what is missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["DaysSupply", "days_supply", "daily_dose", "interval_days"]

_MAX_INSTRUCTIONS = 10
_MAX_DAYS = 366
# Timing.repeat.periodUnit → days (UCUM units of time, as FHIR's units-of-time)
_UNIT_DAYS = {
    "s": 1 / 86400,
    "min": 1 / 1440,
    "h": 1 / 24,
    "d": 1.0,
    "wk": 7.0,
    "mo": 30.0,
    "a": 365.0,
}
# Timing.code (v3 GTSAbbreviation) → doses a day
_CODE_PER_DAY = {
    "QD": 1.0,
    "AM": 1.0,
    "PM": 1.0,
    "BED": 1.0,
    "BID": 2.0,
    "TID": 3.0,
    "QID": 4.0,
    "QOD": 0.5,
    "Q4H": 6.0,
    "Q6H": 4.0,
    "Q8H": 3.0,
    "Q12H": 2.0,
    "WK": 1 / 7,
}
_UNIT_WORDS = {  # one name for the units pharmacies and prescribers write differently
    "tab": "tablet",
    "tabs": "tablet",
    "tablet": "tablet",
    "tablets": "tablet",
    "{tbl}": "tablet",
    "{tablet}": "tablet",
    "cap": "capsule",
    "caps": "capsule",
    "capsule": "capsule",
    "capsules": "capsule",
    "{cap}": "capsule",
    "{capsule}": "capsule",
    "film": "film",
    "films": "film",
    "{film}": "film",
    "ml": "mL",
    "milliliter": "mL",
    "millilitre": "mL",
    "mg": "mg",
    "ea": "each",
    "each": "each",
    "{each}": "each",
}


@dataclass(frozen=True, slots=True)
class DaysSupply:
    days: int | None  # None: unknown
    missing: str = ""  # why, in words a case manager can act on


def _unit(quantity: dict[str, Any]) -> str:
    raw = str(quantity.get("code") or quantity.get("unit") or "").strip()
    return _UNIT_WORDS.get(raw.casefold(), raw.casefold())


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _per_day(timing: dict[str, Any]) -> float | None:
    repeat = timing.get("repeat") or {}
    if repeat.get("period") is not None:
        period = _number(repeat.get("period"))
        unit = _UNIT_DAYS.get(str(repeat.get("periodUnit") or ""))
        frequency = _number(repeat.get("frequency", 1))
        if period and unit and frequency:
            return frequency / (period * unit)
        return None
    code = next((str(c.get("code")) for c in (timing.get("code") or {}).get("coding") or []), None)
    return _CODE_PER_DAY.get((code or "").upper())


def daily_dose(request: dict[str, Any]) -> tuple[float, str] | str:
    """(amount a day, unit) from the order's dosage instructions, or what is missing."""
    instructions = (request.get("dosageInstruction") or [])[:_MAX_INSTRUCTIONS]
    if not instructions:
        return "the order has no dosage instructions"
    total, unit = 0.0, None
    for dosage in instructions:
        if dosage.get("asNeededBoolean") or dosage.get("asNeededCodeableConcept"):
            return "the order is taken as needed (PRN): no daily dose"
        dose = next(
            (
                d.get("doseQuantity")
                for d in dosage.get("doseAndRate") or []
                if d.get("doseQuantity")
            ),
            None,
        )
        if not dose or _number(dose.get("value")) is None:
            return "the order gives no dose quantity"
        per_day = _per_day(dosage.get("timing") or {})
        if per_day is None:
            return "the order gives no dosing frequency"
        if unit is not None and _unit(dose) != unit:
            return "the order's doses are in different units"
        unit = _unit(dose)
        total += float(dose["value"]) * per_day
    if not total > 0 or not math.isfinite(total):
        return "the order's daily dose is not a positive amount"
    return total, unit or ""


def interval_days(request: dict[str, Any] | None) -> int:
    """Days one clinic dose covers: the order's dosing interval (daily, most often), at least 1."""
    for dosage in ((request or {}).get("dosageInstruction") or [])[:_MAX_INSTRUCTIONS]:
        per_day = _per_day(dosage.get("timing") or {})
        if per_day and per_day > 0:
            return _whole_days(1 / per_day) if 1 / per_day >= 1 else 1
    return 1


def days_supply(dispense: dict[str, Any], request: dict[str, Any] | None) -> DaysSupply:
    sent = _number((dispense.get("daysSupply") or {}).get("value"))
    if sent is not None and sent > 0:
        return DaysSupply(_whole_days(sent))
    quantity = dispense.get("quantity") or {}
    amount = _number(quantity.get("value"))
    if amount is None or amount <= 0:
        return DaysSupply(None, "neither days' supply nor the quantity dispensed was sent")
    if request is None:
        return DaysSupply(
            None, "no days' supply was sent and no authorizing prescription gives the daily dose"
        )
    dose = daily_dose(request)
    if isinstance(dose, str):
        return DaysSupply(None, f"no days' supply was sent and {dose}")
    per_day, unit = dose
    if unit != _unit(quantity):
        return DaysSupply(
            None,
            f"no days' supply was sent and the order's dose is in {unit or 'no unit'} while the "
            f"dispense counts {_unit(quantity) or 'no unit'}",
        )
    return DaysSupply(_whole_days(amount / per_day))


def _whole_days(value: float) -> int:
    """Whole days, at least 1 and at most 366 (a supply claimed longer is bounded)."""
    if not math.isfinite(value) or value >= _MAX_DAYS:
        return _MAX_DAYS
    return max(1, math.floor(value))
