"""Follow-up after hospitalisation for mental illness (HEDIS FUH), per psychiatric discharge.

Day 0 is the local discharge day in the facility's zone; a follow-up on day 1..7 meets FUH-7 and
on day 1..30 FUH-30 (a visit on the discharge day does not count). A follow-up is:

- a completed referral Task, or a completed ServiceRequest, for one of ``monitor_fuh_activities``
  (psychiatry follow-up, psychotherapy intake, the 72-hour follow-up call), dated by the Task's
  ``executionPeriod.end``, else when it became completed;
- an outpatient Encounter (class AMB, VR or HH; not cancelled) with a mental-health service
  (``monitor_mh_services`` in ``serviceType``/``type``), dated by ``period.start``.

Excluded: death (the patient deceased by day 30, or discharged ``exp``), hospice (discharged to
hospice, v2-0112 50/51, or FHIR ``hosp`` when no v2 code is given), and readmission (an inpatient
admission on day 0..30 after the discharge: only the last discharge counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.monitors._days import day_number, parse
from fhir_gateway.monitors._episodes import Discharge, all_discharges, patient_discharges
from fhir_gateway.monitors._fhir import read, ref, search
from fhir_gateway.monitors._visits import VOID, is_inpatient, is_outpatient
from fhir_gateway.settings import Settings
from fhir_gateway.store import repository as repo

__all__ = [
    "Evidence",
    "Outcome",
    "evaluate",
    "evaluate_discharge",
    "DEATH",
    "HOSPICE",
    "READMISSION",
]

DEATH, HOSPICE, READMISSION = "death", "hospice", "readmission"
_V2_0112 = "http://terminology.hl7.org/CodeSystem/v2-0112"
_DISPOSITION = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
WINDOW = 30


@dataclass(frozen=True, slots=True)
class Evidence:
    reference: str
    at: datetime
    day: int


@dataclass(slots=True)
class Outcome:
    discharge: Discharge
    exclusion: str | None = None
    follow_ups: list[Evidence] = field(default_factory=list)  # day 1..30, earliest first

    @property
    def local_date(self) -> date:
        return self.discharge.at.date()

    def within(self, days: int) -> Evidence | None:
        return next((e for e in self.follow_ups if 1 <= e.day <= days), None)


def evaluate(
    session: Session, settings: Settings, start: date, end: date, patient: str | None = None
) -> list[Outcome]:
    """Every psychiatric discharge whose local date is in [start, end] (of ``patient``, if given)."""
    every = (
        patient_discharges(session, settings, patient, live=False)
        if patient
        else all_discharges(session, settings)
    )
    found = [d for d in every if start <= d.at.date() <= end]
    return [evaluate_discharge(session, settings, d) for d in found]


def evaluate_discharge(session: Session, settings: Settings, discharge: Discharge) -> Outcome:
    outcome = Outcome(discharge, exclusion=_exclusion(session, settings, discharge))
    evidence = _tasks_and_requests(session, settings, discharge) + _visits(
        session, settings, discharge
    )
    outcome.follow_ups = sorted(
        (e for e in evidence if 1 <= e.day <= WINDOW), key=lambda e: (e.at, e.reference)
    )
    return outcome


# -- exclusions -----------------------------------------------------------------------------------


def _codes(encounter: dict[str, Any]) -> set[tuple[str, str]]:
    concept = (encounter.get("hospitalization") or {}).get("dischargeDisposition") or {}
    return {(c.get("system", ""), c.get("code", "")) for c in concept.get("coding", [])}


def _exclusion(session: Session, settings: Settings, d: Discharge) -> str | None:
    codes = _codes(d.encounter)
    v2 = {c for s, c in codes if s == _V2_0112}
    if (
        _died(read(session, d.patient) or {}, d)
        or (_DISPOSITION, "exp") in codes
        or v2 & {"20", "40", "41", "42"}
    ):
        return DEATH
    # v2 09 maps to FHIR "hosp" in the shipped ConceptMap, so "hosp" means hospice only alone
    if v2 & {"50", "51"} or (not v2 and (_DISPOSITION, "hosp") in codes):
        return HOSPICE
    if _readmitted(session, settings, d):
        return READMISSION
    return None


def _died(patient: dict[str, Any], d: Discharge) -> bool:
    if patient.get("deceasedBoolean") is True:
        return True
    died = parse(patient.get("deceasedDateTime"), d.zone)
    return died is not None and day_number(d.at, died, d.zone) <= WINDOW


def _readmitted(session: Session, settings: Settings, d: Discharge) -> bool:
    for encounter in search(session, "Encounter", [("subject", d.patient)]):
        if (
            encounter["id"] == d.encounter["id"]
            or not is_inpatient(encounter)
            or encounter.get("status") in VOID
        ):
            continue
        at = parse((encounter.get("period") or {}).get("start"), d.zone)
        if at is not None and at >= d.at and day_number(d.at, at, d.zone) <= WINDOW:
            return True
    return False


# -- follow-up evidence ---------------------------------------------------------------------------


def _qualifies(request: dict[str, Any] | None, settings: Settings) -> bool:
    urls = {c.split("|", 1)[0] for c in (request or {}).get("instantiatesCanonical", [])}
    return bool(urls & set(settings.monitor_fuh_activities))


def _became(session: Session, res_type: str, res_id: str, status: str) -> datetime | None:
    """When the resource first reached ``status`` in its current run of it (from its history)."""
    versions, _ = repo.history(session, res_type=res_type, res_id=res_id, count=1000)
    when = None
    for version in versions:  # newest first
        if version.deleted or version.content.get("status") != status:
            break
        when = version.last_updated
    return when


def _evidence(reference: str, at: datetime | None, d: Discharge) -> list[Evidence]:
    return [] if at is None else [Evidence(reference, at, day_number(d.at, at, d.zone))]


def _tasks_and_requests(session: Session, settings: Settings, d: Discharge) -> list[Evidence]:
    out: list[Evidence] = []
    for task in search(session, "Task", [("patient", d.patient), ("status", "completed")]):
        if not _qualifies(read(session, ref(task, "focus")), settings):
            continue
        done = parse((task.get("executionPeriod") or {}).get("end"), d.zone)
        out += _evidence(
            f"Task/{task['id']}", done or _became(session, "Task", task["id"], "completed"), d
        )
    for request in search(
        session, "ServiceRequest", [("subject", d.patient), ("status", "completed")]
    ):
        if _qualifies(request, settings):
            out += _evidence(
                f"ServiceRequest/{request['id']}",
                _became(session, "ServiceRequest", request["id"], "completed"),
                d,
            )
    return out


def _mental_health(encounter: dict[str, Any], settings: Settings) -> bool:
    wanted = {c.upper() for c in settings.monitor_mh_services}
    concepts = [encounter.get("serviceType") or {}, *encounter.get("type", [])]
    return any(
        (c.get("code") or "").upper() in wanted
        for concept in concepts
        for c in concept.get("coding", [])
    )


def _visits(session: Session, settings: Settings, d: Discharge) -> list[Evidence]:
    out: list[Evidence] = []
    for encounter in search(session, "Encounter", [("subject", d.patient)]):
        if (
            not is_outpatient(encounter)
            or encounter.get("status") in VOID
            or not _mental_health(encounter, settings)
        ):
            continue
        out += _evidence(
            f"Encounter/{encounter['id']}",
            parse((encounter.get("period") or {}).get("start"), d.zone),
            d,
        )
    return out
