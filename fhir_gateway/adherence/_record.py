"""Writing what an assessment found: one current PDC Observation per patient and class, and the
work items (Flags with the monitors' codes), raised, brought up to date or ended. Deterministic
ids (``adherence_id``): a repeated run or a second worker meets the same resource. Everything takes
the labels of the data it derives from (``privacy``), and the class's own (substance-use data).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock, privacy
from fhir_gateway.adherence._assess import ClassAdherence, MissedInjection, UnknownSupply
from fhir_gateway.adherence._catalog import MedClass
from fhir_gateway.adherence._codes import (
    DAYS_COVERED,
    DAYS_IN_HOSPITAL,
    DAYS_MEASURED,
    component_coding,
    pdc_coding,
)
from fhir_gateway.adherence._ids import adherence_id, create_once
from fhir_gateway.monitors import (
    ADHERENCE_UNKNOWN,
    LOW_ADHERENCE,
    MISSED_INJECTION,
    REFILL_LATE,
    Alert,
    flag,
)
from fhir_gateway.monitors import flag_coding as coding
from fhir_gateway.services.lookup import read, save

__all__ = [
    "labels_for",
    "observation_id",
    "write_observation",
    "flag_id",
    "raise_item",
    "end_item",
    "low_adherence",
    "refill_late",
    "missed_injection",
    "unknown_supply",
]

_OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
_UCUM = "http://unitsofmeasure.org"
_MAX_DERIVED = 100  # derivedFrom references kept (the most recent fills)


def labels_for(
    med_class: MedClass, sources: Sequence[dict[str, Any] | None]
) -> list[dict[str, Any]]:
    """PSY (and ETH for a substance-use class), R/ETH/42CFRPart2 when a source is Part 2 data,
    and whatever R/ETH/42CFRPart2 the sources carry."""
    part2 = any(privacy.is_part2(s) for s in sources)
    inherited = [
        lb for s in sources for lb in privacy.labels_of(s) if lb.get("code") in privacy.INHERITED
    ]
    return privacy.merge_labels(
        privacy.activity_labels(med_class.sensitivities, part2=part2), inherited
    )


def _ref(doc: dict[str, Any]) -> str:
    return f"{doc['resourceType']}/{doc['id']}"


def observation_id(patient: str, med_class: MedClass) -> str:
    return adherence_id("pdc", patient, med_class.id)


def _days(code: str, value: int) -> dict[str, Any]:
    return {
        "code": {"coding": [component_coding(code)]},
        "valueQuantity": {"value": value, "unit": "days", "system": _UCUM, "code": "d"},
    }


def write_observation(
    session: Session, patient: str, result: ClassAdherence, start: date, end: date
) -> str | None:
    """The class's PDC as its one current Observation; without a PDC, an existing one says why
    (dataAbsentReason) and none is made. Unchanged: no new version."""
    med_class, cov = result.med_class, result.coverage
    obs_id = observation_id(patient, med_class)
    current = read(session, f"Observation/{obs_id}")
    pdc = cov.pdc if cov is not None and not result.unknown else None
    if pdc is None and current is None:
        return None
    doc: dict[str, Any] = {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "category": [{"coding": [{"system": _OBSERVATION_CATEGORY, "code": "therapy"}]}],
        "code": {"coding": [pdc_coding(med_class)], "text": pdc_coding(med_class)["display"]},
        "subject": {"reference": patient},
        "effectivePeriod": {"start": start.isoformat(), "end": end.isoformat()},
    }
    sources = result.sources[-_MAX_DERIVED:]
    if pdc is not None and cov is not None:
        doc["valueQuantity"] = {"value": pdc, "unit": "ratio", "system": _UCUM, "code": "1"}
        doc["component"] = [
            _days(DAYS_COVERED, cov.days_covered),
            _days(DAYS_MEASURED, cov.days_in_period),
            _days(DAYS_IN_HOSPITAL, cov.days_in_hospital),
        ]
        doc["derivedFrom"] = [{"reference": _ref(s)} for s in sources]
    else:
        why = (
            f"the days' supply of {len(result.unknown)} dispense(s) cannot be known"
            if result.unknown
            else "no fill of this class reaches into the window"
        )
        doc["dataAbsentReason"] = {
            "coding": [
                {"system": _DATA_ABSENT, "code": "unknown" if result.unknown else "not-applicable"}
            ],
            "text": f"No proportion of days covered: {why}.",
        }
        sources = [u.dispense for u in result.unknown]
    labels = labels_for(med_class, [*sources, *(u.dispense for u in result.unknown)])
    if labels:
        doc["meta"] = {"security": labels}
    if current is not None and _same(current, doc):
        return obs_id
    save(session, {**doc, "issued": clock.to_instant(clock.now())})
    return obs_id


def _same(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    skip = ("meta", "issued")
    return {k: v for k, v in current.items() if k not in skip} == {
        k: v for k, v in wanted.items() if k not in skip
    } and privacy.label_codes(privacy.labels_of(wanted)) <= privacy.label_codes(
        privacy.labels_of(current)
    )


# -- work items ----------------------------------------------------------------------------------


def flag_id(code: str, patient: str, key: str) -> str:
    return adherence_id(code, patient, key)


def raise_item(session: Session, fid: str, alert: Alert, author: str) -> None:
    """The Flag active with this text and these labels (created, updated or re-activated)."""
    if create_once(session, flag(fid, alert, author)):
        return
    current = read(session, f"Flag/{fid}") or {}
    period = current.get("period") or {}
    if current.get("status") != "active":
        period = {"start": clock.to_instant(clock.now())}
    wanted = privacy.with_labels(
        {
            **current,
            "status": "active",
            "code": {"coding": [coding(c) for c in alert.codes], "text": alert.text},
            "period": period,
        },
        alert.labels,
    )
    if wanted != current:
        save(session, wanted)


def end_item(session: Session, fid: str) -> bool:
    current = read(session, f"Flag/{fid}")
    if current is None or current.get("status") != "active":
        return False
    period = {**(current.get("period") or {}), "end": clock.to_instant(clock.now())}
    save(session, {**current, "status": "inactive", "period": period})
    return True


def _alert(
    code: str, patient: str, text: str, priority: str, details: list[str], labels: Any
) -> Alert:
    return Alert(
        codes=[code],
        patient=patient,
        category="drug",
        priority=priority,
        text=text,
        details=details,
        labels=labels,
    )


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def low_adherence(
    patient: str, result: ClassAdherence, threshold: float, observation: str | None
) -> Alert:
    cov = result.coverage
    assert cov is not None and cov.pdc is not None
    hospital = f", {cov.days_in_hospital} days in hospital left out" if cov.days_in_hospital else ""
    text = (
        f"{result.med_class.title}: {_percent(cov.pdc)} of days covered ({cov.days_covered} of "
        f"{cov.days_in_period} days{hospital}) from {cov.start} to {cov.end}, below "
        f"{_percent(threshold)}. Talk with the patient about their medication and what gets in "
        "the way."
    )
    details = [f"Observation/{observation}"] if observation else []
    return _alert(
        LOW_ADHERENCE, patient, text, "PM", details, labels_for(result.med_class, result.sources)
    )


def refill_late(patient: str, result: ClassAdherence, grace: int) -> Alert:
    cov = result.coverage
    assert cov is not None and cov.covered_until is not None and result.last_fill is not None
    last = _ref(result.last_fill)
    text = (
        f"{result.med_class.title}: the supply of {result.last_name} ({last}) ran out after "
        f"{cov.covered_until}; no refill for {result.late_days} days (more than {grace}). Call the "
        "patient and the pharmacy."
    )
    return _alert(
        REFILL_LATE, patient, text, "PM", [last], labels_for(result.med_class, [result.last_fill])
    )


def missed_injection(patient: str, missed: MissedInjection) -> Alert:
    last = _ref(missed.last) if missed.last else ""
    latest = missed.due + timedelta(days=missed.injectable.grace)
    text = (
        f"{missed.injectable.title}: last injection on {missed.given} ({last}), due {missed.due}, "
        f"at the latest {latest}; none given since. Arrange the injection now."
    )
    return _alert(
        MISSED_INJECTION,
        patient,
        text,
        "PH",
        [last] if last else [],
        labels_for(missed.med_class, [missed.last]),
    )


def unknown_supply(patient: str, unknown: UnknownSupply) -> Alert:
    assert unknown.medicine.med_class is not None
    ref = _ref(unknown.dispense)
    when = f" dispensed {unknown.when}" if unknown.when else ""
    text = (
        f"{unknown.medicine.name}{when} ({ref}): no proportion of days covered for "
        f"{unknown.medicine.med_class.title.lower()}, because {unknown.missing}. Ask the pharmacy "
        "for the days' supply, or complete the order's dose."
    )
    return _alert(
        ADHERENCE_UNKNOWN,
        patient,
        text,
        "PL",
        [ref],
        labels_for(unknown.medicine.med_class, [unknown.dispense]),
    )
