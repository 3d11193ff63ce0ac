"""From one patient's dispenses, administrations and stays to what the case manager should know,
per medication class: the PDC, a refill running late, an injection missed, a supply that cannot
be known. Pure: references are resolved through the function given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fhir_gateway.adherence._catalog import (
    LongActingInjectable,
    MedClass,
    MedicationCatalog,
    Medicine,
)
from fhir_gateway.adherence._gather import local_date
from fhir_gateway.adherence._pdc import (
    CLINIC,
    DISPENSE,
    INJECTION,
    MAX_DAYS,
    HospitalStay,
    MedicationFill,
    PdcCoverage,
    coverage,
    days_late,
)
from fhir_gateway.adherence._supply import days_supply, interval_days

__all__ = [
    "UnknownSupply",
    "MissedInjection",
    "ClassAdherence",
    "AdherenceAssessment",
    "PdcWindow",
    "assess",
]

Resolve = Callable[[str | None], dict[str, Any] | None]
_DISCONTINUED = frozenset({"stopped", "completed", "cancelled", "entered-in-error"})


@dataclass(frozen=True, slots=True)
class PdcWindow:
    start: date
    end: date  # today
    refill_grace: int  # days a refill may be late before it is a work item


@dataclass(frozen=True, slots=True)
class UnknownSupply:
    dispense: dict[str, Any]
    medicine: Medicine
    when: date | None
    missing: str


@dataclass(frozen=True, slots=True)
class MissedInjection:
    injectable: LongActingInjectable
    med_class: MedClass
    last: dict[str, Any] | None  # the latest injection
    given: date
    due: date
    overdue: bool  # past due + grace, still ordered


@dataclass(slots=True)
class ClassAdherence:
    med_class: MedClass
    coverage: PdcCoverage | None
    unknown: list[UnknownSupply] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)  # what the PDC derives from
    late_days: int = 0  # > 0: a refill late by so many days (past the grace)
    last_fill: dict[str, Any] | None = None
    last_name: str = ""


@dataclass(slots=True)
class AdherenceAssessment:
    classes: dict[str, ClassAdherence] = field(default_factory=dict)
    injections: list[MissedInjection] = field(default_factory=list)
    unknown: list[UnknownSupply] = field(default_factory=list)
    known: list[dict[str, Any]] = field(default_factory=list)  # dispenses whose supply is known


def _medicine(catalog: MedicationCatalog, doc: dict[str, Any], resolve: Resolve) -> Medicine:
    concept = doc.get("medicationCodeableConcept")
    if concept is None:
        ref = str((doc.get("medicationReference") or {}).get("reference") or "")
        if ref.startswith("#"):  # a Medication contained in the dispense or administration
            medication = next(
                (c for c in doc.get("contained") or [] if f"#{c.get('id')}" == ref), None
            )
        else:
            medication = resolve(ref or None)
        concept = (medication or {}).get("code")
    return catalog.medicine(concept)


def _stopped(request: dict[str, Any] | None) -> bool:
    return (request or {}).get("status") in _DISCONTINUED


def _first_ref(values: Any) -> str | None:
    for value in (values or [])[:5]:
        if isinstance(value, dict) and value.get("reference"):
            return str(value["reference"])
    return None


@dataclass(slots=True)
class _Fills:
    by_class: dict[str, list[MedicationFill]] = field(default_factory=dict)
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    orders: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    def add(self, med: Medicine, fill: MedicationFill, doc: dict[str, Any], order: Any) -> None:
        assert med.med_class is not None
        self.by_class.setdefault(med.med_class.id, []).append(fill)
        self.docs[fill.source] = doc
        self.names[fill.source] = med.name
        self.orders[fill.source] = order


def _dispenses(
    catalog: MedicationCatalog,
    dispenses: list[dict[str, Any]],
    resolve: Resolve,
    zone: ZoneInfo,
    earliest: date,
    fills: _Fills,
    out: AdherenceAssessment,
) -> None:
    for doc in dispenses:
        if doc.get("status") != "completed":
            continue
        med = _medicine(catalog, doc, resolve)
        if med.med_class is None:
            continue
        when = local_date(doc.get("whenHandedOver") or doc.get("whenPrepared"), zone)
        if when is not None and when < earliest:
            continue
        order = resolve(_first_ref(doc.get("authorizingPrescription")))
        supply = days_supply(doc, order)
        if when is None or supply.days is None:
            missing = supply.missing or "it was sent without the day it was handed over"
            out.unknown.append(UnknownSupply(doc, med, when, missing))
            continue
        out.known.append(doc)
        source = f"MedicationDispense/{doc['id']}"
        fills.add(med, MedicationFill(med.key, when, supply.days, source, DISPENSE), doc, order)


def _administrations(
    catalog: MedicationCatalog,
    administrations: list[dict[str, Any]],
    resolve: Resolve,
    zone: ZoneInfo,
    earliest: date,
    fills: _Fills,
) -> None:
    for doc in administrations:
        if doc.get("status") != "completed":
            continue
        med = _medicine(catalog, doc, resolve)
        period = doc.get("effectivePeriod") or {}
        when = local_date(doc.get("effectiveDateTime") or period.get("start"), zone)
        if med.med_class is None or when is None or when < earliest:
            continue
        order = resolve((doc.get("request") or {}).get("reference"))
        source = f"MedicationAdministration/{doc['id']}"
        if med.injectable is not None:
            fill = MedicationFill(med.key, when, med.injectable.interval, source, INJECTION)
        else:
            fill = MedicationFill(med.key, when, interval_days(order), source, CLINIC)
        fills.add(med, fill, doc, order)


def _missed(
    catalog: MedicationCatalog, fills: _Fills, window: PdcWindow, classes: dict[str, MedClass]
) -> list[MissedInjection]:
    latest: dict[str, MedicationFill] = {}
    for class_fills in fills.by_class.values():
        for fill in class_fills:
            if fill.kind == INJECTION and (
                fill.medication not in latest or latest[fill.medication].start < fill.start
            ):
                latest[fill.medication] = fill
    found = []
    lais = {f"injectable|{i.id}": i for i in catalog.injectables}
    for key, fill in sorted(latest.items()):
        lai = lais[key]
        med_class = catalog.by_url(lai.class_url) or next(iter(classes.values()))
        due = fill.start + timedelta(days=lai.interval)
        late = window.end > due + timedelta(days=lai.grace)
        overdue = late and not _stopped(fills.orders.get(fill.source))
        found.append(
            MissedInjection(lai, med_class, fills.docs[fill.source], fill.start, due, overdue)
        )
    return found


def _late_refill(
    result: ClassAdherence, fills: _Fills, window: PdcWindow, stays: list[HospitalStay]
) -> None:
    cov = result.coverage
    if cov is None or cov.last is None or cov.covered_until is None:
        return
    result.last_fill = fills.docs.get(cov.last.source)
    result.last_name = fills.names.get(cov.last.source, "")
    if cov.last.kind != DISPENSE or _stopped(fills.orders.get(cov.last.source)):
        return  # an injection has its own rule; a stopped order is not a late refill
    if any(u.when is None or u.when > cov.last.start for u in result.unknown):
        return  # refilled, even if its supply is unknown
    late = days_late(cov.covered_until, window.end, stays)
    if late > window.refill_grace and not any(s.start <= window.end <= s.end for s in stays):
        result.late_days = late


def assess(
    catalog: MedicationCatalog,
    dispenses: list[dict[str, Any]],
    administrations: list[dict[str, Any]],
    stays: list[HospitalStay],
    window: PdcWindow,
    zone: ZoneInfo,
    resolve: Resolve,
) -> AdherenceAssessment:
    out = AdherenceAssessment()
    fills = _Fills()
    earliest = window.start - timedelta(days=MAX_DAYS)  # a long fill may reach into the window
    _dispenses(catalog, dispenses, resolve, zone, earliest, fills, out)
    _administrations(catalog, administrations, resolve, zone, earliest, fills)
    classes = {c.id: c for c in catalog.classes}
    in_window = [u for u in out.unknown if u.when is None or u.when >= window.start]
    out.unknown = in_window
    for class_id in sorted({*fills.by_class, *(u.medicine.med_class.id for u in in_window)}):  # type: ignore[union-attr]
        class_fills = fills.by_class.get(class_id, [])
        cov = coverage(class_fills, stays, window.start, window.end)
        result = ClassAdherence(classes[class_id], cov)
        result.unknown = [
            u for u in in_window if u.medicine.med_class and u.medicine.med_class.id == class_id
        ]
        if cov is not None:
            result.sources = [fills.docs[s] for s in cov.used]
        _late_refill(result, fills, window, stays)
        out.classes[class_id] = result
    out.injections = _missed(catalog, fills, window, classes)
    return out
