"""FUH as FHIR: the ``Measure/fuh`` definition and its MeasureReports, individual (one patient's
discharges) and summary (every discharge in the period). Pure: outcomes in, resources out."""

from __future__ import annotations

from datetime import date
from typing import Any

from fhir_gateway import clock
from fhir_gateway.monitors._codes import FUH_7, FUH_30, coding
from fhir_gateway.monitors._fuh import Outcome
from fhir_gateway.monitors._ids import monitor_id

__all__ = ["MEASURE_URL", "measure", "summary_report", "individual_report", "Rates", "rates"]

MEASURE_URL = "http://fhir-gateway.org/fhir/Measure/fuh"
_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
_GROUPS = ((FUH_7, 7), (FUH_30, 30))


def measure() -> dict[str, Any]:
    def population(code: str, text: str) -> dict[str, Any]:
        return {
            "code": {"coding": [{"system": _POPULATION, "code": code}]},
            "description": text,
            "criteria": {"language": "text/plain", "expression": text},
        }

    return {
        "resourceType": "Measure",
        "id": "fuh",
        "url": MEASURE_URL,
        "version": "1",
        "name": "FUH",
        "title": "Follow-up after hospitalisation for mental illness (7 and 30 days)",
        "status": "active",
        "publisher": "fhir-gateway",
        "description": "Psychiatric discharges followed by a visit with a mental-health provider within 7 and "
        "within 30 days, counted in calendar days in the discharging facility's zone, the discharge "
        "day not counted. Exclusions: death, hospice, readmission within 30 days.",
        "scoring": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/measure-scoring",
                    "code": "proportion",
                }
            ]
        },
        "improvementNotation": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/measure-improvement-notation",
                    "code": "increase",
                }
            ]
        },
        "group": [
            {
                "code": {"coding": [coding(code)]},
                "population": [
                    population(
                        "initial-population",
                        "Psychiatric discharges (with a care plan) in the period",
                    ),
                    population("denominator", "The initial population"),
                    population(
                        "denominator-exclusion",
                        "Died, discharged to hospice, or readmitted within 30 days",
                    ),
                    population(
                        "numerator", f"Followed up by a mental-health provider on day 1 to {days}"
                    ),
                ],
            }
            for code, days in _GROUPS
        ],
    }


class Rates(dict[str, dict[str, int]]):
    """Per group: initial-population, denominator, denominator-exclusion, numerator."""


def rates(outcomes: list[Outcome]) -> Rates:
    out = Rates()
    for code, days in _GROUPS:
        counted = [o for o in outcomes if o.exclusion is None]
        out[code] = {
            "initial-population": len(outcomes),
            "denominator": len(outcomes),
            "denominator-exclusion": len(outcomes) - len(counted),
            "numerator": sum(1 for o in counted if o.within(days) is not None),
        }
    return out


def _groups(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    groups = []
    for code, counts in rates(outcomes).items():
        group: dict[str, Any] = {
            "code": {"coding": [coding(code)]},
            "population": [
                {"code": {"coding": [{"system": _POPULATION, "code": name}]}, "count": n}
                for name, n in counts.items()
            ],
        }
        eligible = counts["denominator"] - counts["denominator-exclusion"]
        if eligible:
            group["measureScore"] = {"value": round(counts["numerator"] / eligible, 4)}
        groups.append(group)
    return groups


def _evaluated(outcomes: list[Outcome]) -> list[dict[str, str]]:
    refs = [o.discharge.ref for o in outcomes] + [
        e.reference for o in outcomes for e in o.follow_ups
    ]
    return [{"reference": r} for r in dict.fromkeys(refs)]


def _report(
    report_id: str, kind: str, outcomes: list[Outcome], start: date, end: date, reporter: str
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "MeasureReport",
        "id": report_id,
        "status": "complete",
        "type": kind,
        "measure": MEASURE_URL,
        "date": clock.to_instant(clock.now()),
        "reporter": {"reference": reporter},
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "improvementNotation": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/measure-improvement-notation",
                    "code": "increase",
                }
            ]
        },
        "group": _groups(outcomes),
    }
    if evaluated := _evaluated(outcomes):
        doc["evaluatedResource"] = evaluated
    return doc


def summary_report(
    outcomes: list[Outcome], start: date, end: date, reporter: str
) -> dict[str, Any]:
    return _report(
        monitor_id("fuh", "summary", start.isoformat(), end.isoformat()),
        "summary",
        outcomes,
        start,
        end,
        reporter,
    )


def individual_report(
    patient: str, outcomes: list[Outcome], start: date, end: date, reporter: str
) -> dict[str, Any]:
    mine = [o for o in outcomes if o.discharge.patient == patient]
    doc = _report(
        monitor_id("fuh", patient, start.isoformat(), end.isoformat()),
        "individual",
        mine,
        start,
        end,
        reporter,
    )
    doc["subject"] = {"reference": patient}
    return doc
