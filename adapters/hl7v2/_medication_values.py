"""The readers a segment map names (``dependsOn datatype``): one v2 field → one FHIR value.

Each reader takes the mapping context, the plans (a practitioner becomes a resource), the rule
and the segment, and returns a JSON value or None when the field carries nothing usable. A
``required`` field that is empty, or a required date that is no date, raises (the ACK is AE).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ._codes import V2_SYSTEM
from ._datatypes import MappingContext, codeable
from ._datetime import to_fhir_datetime
from ._errors import DataTypeError, RequiredFieldMissing
from ._map_patient import practitioner
from ._parse import Composite, Segment
from ._patch import Plans
from ._segment_maps import SegmentRule
from ._timing import UCUM, duration, repeat_pattern, tq_duration

__all__ = ["read_value", "READERS", "normalise_ndc"]

NDC = "http://hl7.org/fhir/sid/ndc"
_UNKNOWN_AMOUNT = "999"  # RXA-6: "amount unknown" (v2 immunization convention, used for any RXA)
_NUMBER = re.compile(r"\d{1,9}(\.\d{1,6})?\Z")
_MAX_REFILLS = 1000
_NDC_SHAPES = {
    (4, 4, 2): (1, 0, 0),
    (5, 3, 2): (0, 1, 0),
    (5, 4, 1): (0, 0, 1),
    (5, 4, 2): (0, 0, 0),
}
_UNIT_SYSTEMS = frozenset({"UCUM", "ISO+", "ANS+", "ANSI"})
# Units sent without a coding system, as pharmacy systems write them → their UCUM code.
_PLAIN_UNITS = {
    "MG": "mg",
    "G": "g",
    "MCG": "ug",
    "UG": "ug",
    "ML": "mL",
    "L": "L",
    "MEQ": "meq",
    "MMOL": "mmol",
    "{TAB}": "{tbl}",
    "{TBL}": "{tbl}",
    "{CAP}": "{capsule}",
    "{FILM}": "{film}",
}

Reader = Callable[[MappingContext, Plans, SegmentRule, Segment], Any]


def _warn(ctx: MappingContext, text: str) -> None:
    """A warning, once (an RXD's drug is read for its order and for itself)."""
    if text not in ctx.warnings:
        ctx.warnings.append(text)


def _where(rule: SegmentRule, field: int | None = None) -> str:
    return f"{rule.segment}-{field or rule.field}"


def _required(rule: SegmentRule, seg: Segment) -> None:
    if rule.prop("required") == "true":
        raise RequiredFieldMissing(
            f"{_where(rule)} is required",
            segment=rule.segment,
            field=rule.field,
            position=seg.position,
        )


def normalise_ndc(code: str) -> str | None:
    """An NDC with dashes (4-4-2, 5-3-2, 5-4-1) → its 11-digit form; 11 or 10 bare digits as
    they are (a bare 10-digit NDC is ambiguous: kept as sent). None when it is no NDC."""
    parts = code.strip().split("-")
    if not all(p.isascii() and p.isdigit() for p in parts):
        return None
    if len(parts) == 1:
        return parts[0] if len(parts[0]) in (10, 11) else None
    pads = _NDC_SHAPES.get(tuple(len(p) for p in parts))  # type: ignore[arg-type]
    if pads is None or len(parts) != 3:
        return None
    return "".join("0" * pad + part for pad, part in zip(pads, parts, strict=True))


def _drug(ctx: MappingContext, plans: Plans, rule: SegmentRule, seg: Segment) -> Any:
    """CWE → CodeableConcept; an NDC with dashes gets its 11-digit form (the sent code follows);
    a drug sent as text alone stays text (with a warning: no code to classify it by)."""
    concept = codeable(ctx, seg.one(rule.field))
    if concept is None:
        _required(rule, seg)
        return None
    codings = concept.get("coding") or []
    extra = []
    for coding in codings:
        if coding.get("system") == NDC:
            bare = normalise_ndc(str(coding["code"]))
            if bare is None:
                _warn(ctx, f"{_where(rule)}: {coding['code']!r} is not an NDC")
            elif bare != coding["code"]:
                extra.append({**coding, "system": ctx.codes.as_sent_system("NDC")})
                coding["code"] = bare
    if extra:
        concept["coding"] = codings + extra
    if not codings:
        _warn(ctx, f"{_where(rule)}: drug {concept.get('text', '')[:40]!r} has no code")
    return concept


def _cwe(ctx: MappingContext, plans: Plans, rule: SegmentRule, seg: Segment) -> Any:
    """CWE → CodeableConcept; a code of the rule's v2 table (``HL70162``) also gets the coding
    the table's map gives (a route's SNOMED CT code), first."""
    reps = seg.reps(rule.field)
    if not reps:
        return None
    table = rule.prop("table")
    concept = codeable(ctx, reps[0], table)
    codings = (concept or {}).get("coding") or []
    if table and codings and codings[0].get("system") == V2_SYSTEM + table:
        mapped = ctx.codes.coding(table, str(codings[0].get("code")))
        if mapped and mapped["system"] != codings[0]["system"]:
            codings.insert(0, mapped)
    return concept


def _cwe_code(ctx: MappingContext, plans: Plans, rule: SegmentRule, seg: Segment) -> Any:
    """A table code translated into a CodeableConcept of ``system`` (ORC-29 → category)."""
    code = seg.value(rule.field)
    target = ctx.codes.translate(rule.prop("table"), code) if code else None
    if not target:
        return None
    return {"coding": [{"system": rule.prop("system"), "code": target}]}


def _cwe_text(ctx: MappingContext, plans: Plans, rule: SegmentRule, seg: Segment) -> Any:
    texts = [r(2) or r(1) for r in seg.reps(rule.field)[:10]]
    return "; ".join(t for t in texts if t) or None


def _cwe_note(ctx: MappingContext, plans: Plans, rule: SegmentRule, seg: Segment) -> Any:
    text = _cwe_text(ctx, plans, rule, seg)
    return {"text": text} if text else None


def _code(ctx: MappingContext, plans: Plans, rule: SegmentRule, seg: Segment) -> Any:
    code = seg.value(rule.field)
    mapped = ctx.codes.translate(rule.prop("table"), code) if code else None
    if code and not mapped and rule.prop("unmapped") != "ignore":
        _warn(ctx, f"{_where(rule)}: {code!r} has no FHIR code in table {rule.prop('table')}")
    return mapped


def _amount(ctx: MappingContext, rule: SegmentRule, seg: Segment, field: int) -> int | float | None:
    raw = seg.value(field)
    if not raw:
        return None
    if not _NUMBER.match(raw):
        raise DataTypeError(
            f"{_where(rule, field)} {raw[:20]!r} is not a number",
            segment=rule.segment,
            field=field,
            position=seg.position,
        )
    return float(raw) if "." in raw else int(raw)


def _units(ctx: MappingContext, c: Composite) -> dict[str, Any]:
    if not (c(1) or c(2)):
        return {}
    out: dict[str, Any] = {"unit": c(2) or c(1)}
    if c(1) and c(3).upper() in _UNIT_SYSTEMS:
        out.update(system=UCUM, code=c(1))
    elif c(1) and c(3):
        out.update(system=ctx.codes.coding_system(c(3)), code=c(1))
    elif c(1).upper() in _PLAIN_UNITS:
        out.update(system=UCUM, code=_PLAIN_UNITS[c(1).upper()])
    return out


def _quantity(ctx: MappingContext, plans: Plans, rule: SegmentRule, seg: Segment) -> Any:
    if rule.segment == "RXA" and seg.value(rule.field) == _UNKNOWN_AMOUNT:
        return None
    value = _amount(ctx, rule, seg, rule.field)
    if value is None:
        return None
    unit_field = rule.other_field("unit")
    units = _units(ctx, seg.one(unit_field)) if unit_field else {}
    return {"value": value, **units}


def _dose(ctx: MappingContext, plans: Plans, rule: SegmentRule, seg: Segment) -> Any:
    """Give amount minimum (and maximum) → ``{"doseQuantity": …}`` or ``{"doseRange": …}``."""
    low = _quantity(ctx, plans, rule, seg)
    top_field = rule.other_field("maximum")
    high = _amount(ctx, rule, seg, top_field) if top_field else None
    if low is None:
        return None
    if high is None or high == low["value"]:
        return low
    return {"low": low, "high": {**low, "value": high}, "_range": True}


def _count(ctx: MappingContext, plans: Plans, rule: SegmentRule, seg: Segment) -> Any:
    raw = seg.value(rule.field)
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > _MAX_REFILLS:
        _warn(ctx, f"{_where(rule)}: {raw[:20]!r} is not a count of refills; ignored")
        return None
    return int(raw)


def _dtm(ctx: MappingContext, plans: Plans, rule: SegmentRule, seg: Segment) -> Any:
    raw = seg.value(rule.field)
    if not raw:
        _required(rule, seg)
        return None
    if rule.prop("required") != "true":
        return ctx.dt(raw, _where(rule))
    try:
        return to_fhir_datetime(raw, ctx.zone)
    except ValueError as exc:
        raise DataTypeError(
            f"{_where(rule)} {raw[:30]!r} is not a date/time",
            segment=rule.segment,
            field=rule.field,
            position=seg.position,
        ) from exc


def _effective(ctx: MappingContext, plans: Plans, rule: SegmentRule, seg: Segment) -> Any:
    """Start (and end) → ``{"dateTime": …}`` or ``{"period": …}`` (the caller picks effective[x])."""
    start = _dtm(ctx, plans, rule, seg)
    end_field = rule.other_field("end")
    end = ctx.dt(seg.value(end_field), _where(rule, end_field)) if end_field else None
    if start is None:
        return None
    if end is None or end == start:
        return {"dateTime": start}
    return {"period": {"start": start, "end": end}}


def _xcn(ctx: MappingContext, plans: Plans, rule: SegmentRule, seg: Segment) -> Any:
    reps = seg.reps(rule.field)
    return practitioner(ctx, plans, reps[0], _where(rule)) if reps else None


def _prescription_number(ctx: MappingContext, plans: Plans, rule: SegmentRule, seg: Segment) -> Any:
    value = seg.value(rule.field)
    if not value:
        return None
    return {"type": ctx.codes.concept("0203", "RXN"), "value": value}


def _tq1_timing(ctx: MappingContext, plans: Plans, rule: SegmentRule, seg: Segment) -> Any:
    """TQ1-3 repeat pattern, TQ1-4 explicit times, TQ1-7/8 bounds, TQ1-14 occurrences → Timing."""
    repeat: dict[str, Any] = {}
    code = seg.value(3)
    pattern, prn = repeat_pattern(code)
    if pattern:
        repeat.update(pattern)
    elif code and code != "PRN":
        _warn(ctx, f"TQ1-3: repeat pattern {code[:20]!r} is not known; kept as text")
    times = [_time_of_day(r(1)) for r in seg.reps(4)[:24]]
    if times and all(times):
        repeat["timeOfDay"] = times
    bounds = ctx.period(seg.value(7), seg.value(8), "TQ1-7")
    if bounds:
        repeat["boundsPeriod"] = bounds
    total = seg.value(14)
    if total.isascii() and total.isdigit() and 0 < int(total) <= 100_000:
        repeat["count"] = int(total)
    timing: dict[str, Any] = {}
    if repeat:
        timing["repeat"] = repeat
    if code:
        timing["code"] = {"text": code}
    if prn:
        timing["_asNeeded"] = True
    return timing or None


def _time_of_day(raw: str) -> str | None:
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit() and len(raw) in (4, 6)):
        return None
    hh, mm, ss = raw[:2], raw[2:4], raw[4:6] or "00"
    if int(hh) > 23 or int(mm) > 59 or int(ss) > 59:
        return None
    return f"{hh}:{mm}:{ss}"


def _tq_timing(ctx: MappingContext, plans: Plans, rule: SegmentRule, seg: Segment) -> Any:
    """v2.3 TQ (RXE-1, ORC-7): TQ.2 interval (repeat pattern), TQ.4/TQ.5 start and end."""
    c = seg.one(rule.field)
    if not c:
        return None
    repeat: dict[str, Any] = {}
    code = c(2)
    pattern, prn = repeat_pattern(code)
    if pattern:
        repeat.update(pattern)
    bounds = ctx.period(c(4), c(5), _where(rule))
    if bounds:
        repeat["boundsPeriod"] = bounds
    timing: dict[str, Any] = {"repeat": repeat} if repeat else {}
    if code:
        timing["code"] = {"text": code}
    if prn:
        timing["_asNeeded"] = True
    return timing or None


def _tq_duration(ctx: MappingContext, plans: Plans, rule: SegmentRule, seg: Segment) -> Any:
    return tq_duration(seg.one(rule.field)(3))


def _duration(ctx: MappingContext, plans: Plans, rule: SegmentRule, seg: Segment) -> Any:
    c = seg.one(rule.field)
    return duration(c(1), c(2)) if c(1) else None


def _days(ctx: MappingContext, plans: Plans, rule: SegmentRule, seg: Segment) -> Any:
    """A count of days (a sender's days-supply field) → Quantity in days."""
    found = duration(seg.value(rule.field), "d")
    return {k: found[k] for k in ("value", "unit", "system", "code")} if found else None


READERS: dict[str, Reader] = {
    "CWE-drug": _drug,
    "CWE": _cwe,
    "CWE-code": _cwe_code,
    "CWE-text": _cwe_text,
    "CWE-note": _cwe_note,
    "code": _code,
    "quantity": _quantity,
    "dose": _dose,
    "count": _count,
    "DTM": _dtm,
    "effective": _effective,
    "XCN": _xcn,
    "prescription-number": _prescription_number,
    "TQ1-timing": _tq1_timing,
    "TQ-timing": _tq_timing,
    "TQ-duration": _tq_duration,
    "duration": _duration,
    "days": _days,
}


def read_value(ctx: MappingContext, plans: Plans, rule: SegmentRule, seg: Segment) -> Any:
    reader = READERS.get(rule.datatype)
    if reader is None:
        _warn(ctx, f"segment map: datatype {rule.datatype!r} of {_where(rule)} is unknown")
        return None
    return reader(ctx, plans, rule, seg)
