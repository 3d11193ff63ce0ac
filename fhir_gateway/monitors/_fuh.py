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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from fhir_gateway.fhir.references import Reference
from fhir_gateway.monitors._days import day_number, parse
from fhir_gateway.monitors._episodes import Discharge, all_discharges, discharges_of
from fhir_gateway.monitors._fhir import chunks, local_ref, ref, search
from fhir_gateway.monitors._visits import VOID, is_inpatient, is_outpatient
from fhir_gateway.settings import Settings
from fhir_gateway.store import repository as repo

__all__ = [
    "Evidence",
    "Outcome",
    "evaluate",
    "evaluate_for",
    "evaluate_discharge",
    "DEATH",
    "HOSPICE",
    "READMISSION",
]

DEATH, HOSPICE, READMISSION = "death", "hospice", "readmission"
_V2_0112 = "http://terminology.hl7.org/CodeSystem/v2-0112"
_DISPOSITION = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
WINDOW = 30
_HISTORY = 1000  # versions looked back through for when a status was reached
_UTC = ZoneInfo("UTC")


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
    if patient:
        return evaluate_for(session, settings, start, end, [patient])
    found = [d for d in all_discharges(session, settings) if start <= d.at.date() <= end]
    return _evaluate(session, settings, found)


def evaluate_for(
    session: Session, settings: Settings, start: date, end: date, patients: Sequence[str]
) -> list[Outcome]:
    """``evaluate`` of each of ``patients`` (oldest discharge first): each kind of evidence read
    for all of them at once, so the cost does not grow with their number."""
    every = discharges_of(session, settings, patients, live=False)
    return _evaluate(session, settings, [d for d in every if start <= d.at.date() <= end])


def evaluate_discharge(session: Session, settings: Settings, discharge: Discharge) -> Outcome:
    return _evaluate(session, settings, [discharge])[0]


def _evaluate(session: Session, settings: Settings, found: list[Discharge]) -> list[Outcome]:
    known = _gather(session, settings, [d.patient for d in found])
    return [_outcome(settings, d, known) for d in found]


def _outcome(settings: Settings, d: Discharge, known: _Known) -> Outcome:
    outcome = Outcome(d, exclusion=_exclusion(d, known))
    evidence = _tasks_and_requests(d, known) + _visits(settings, d, known)
    outcome.follow_ups = sorted(
        (e for e in evidence if 1 <= e.day <= WINDOW), key=lambda e: (e.at, e.reference)
    )
    return outcome


# -- what is known of the patients ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Known:
    """What FUH reads of a set of patients, by local reference (``Patient/id``)."""

    patients: dict[str, dict[str, Any]]
    encounters: dict[str, list[dict[str, Any]]]
    tasks: dict[str, list[dict[str, Any]]]  # completed, for a FUH activity
    requests: dict[str, list[dict[str, Any]]]  # completed, for a FUH activity
    became: dict[str, datetime | None]  # when each of those became completed (from its history)


def _by_patient(
    session: Session, res_type: str, param: str, field: str, patients: list[str], *rest: Any
) -> dict[str, list[dict[str, Any]]]:
    """A search of ``res_type`` for all ``patients`` (a search per chunk), grouped by ``field``."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for chunk in chunks(patients):
        for doc in search(session, res_type, [(param, ",".join(chunk)), *rest]):
            grouped.setdefault(local_ref(ref(doc, field)), []).append(doc)
    return grouped


def _read_all(session: Session, references: set[str]) -> dict[str, dict[str, Any]]:
    """The current resources behind ``references``: one read per type."""
    parsed = [r for r in map(Reference.parse, references) if r is not None and r.type]
    found: dict[str, dict[str, Any]] = {}
    for res_type in sorted({r.type for r in parsed if r.type}):
        ids = sorted({r.id for r in parsed if r.type == res_type})
        stored = repo.read_many(session, res_type, ids)
        found.update((f"{res_type}/{s.res_id}", s.content) for s in stored if not s.deleted)
    return found


def _gather(session: Session, settings: Settings, references: list[str]) -> _Known:
    patients = sorted({p for p in map(local_ref, references) if p})
    done = ("status", "completed")
    tasks = _by_patient(session, "Task", "patient", "for", patients, done)
    foci = _read_all(session, {f for t in _flat(tasks) if (f := local_ref(ref(t, "focus")))})
    tasks = _kept(tasks, lambda t: _qualifies(foci.get(local_ref(ref(t, "focus"))), settings))
    requests = _by_patient(session, "ServiceRequest", "subject", "subject", patients, done)
    requests = _kept(requests, lambda r: _qualifies(r, settings))
    undated = [t for t in _flat(tasks) if _done(t, _UTC) is None]
    return _Known(
        patients=_read_all(session, set(patients)),
        encounters=_by_patient(session, "Encounter", "subject", "subject", patients),
        tasks=tasks,
        requests=requests,
        became=_became(session, "Task", undated)
        | _became(session, "ServiceRequest", _flat(requests)),
    )


def _flat(grouped: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [doc for docs in grouped.values() for doc in docs]


def _kept(
    grouped: dict[str, list[dict[str, Any]]], keep: Callable[[dict[str, Any]], bool]
) -> dict[str, list[dict[str, Any]]]:
    return {k: [doc for doc in docs if keep(doc)] for k, docs in grouped.items()}


# -- exclusions -----------------------------------------------------------------------------------


def _codes(encounter: dict[str, Any]) -> set[tuple[str, str]]:
    concept = (encounter.get("hospitalization") or {}).get("dischargeDisposition") or {}
    return {(c.get("system", ""), c.get("code", "")) for c in concept.get("coding", [])}


def _exclusion(d: Discharge, known: _Known) -> str | None:
    codes = _codes(d.encounter)
    v2 = {c for s, c in codes if s == _V2_0112}
    if (
        _died(known.patients.get(local_ref(d.patient)) or {}, d)
        or (_DISPOSITION, "exp") in codes
        or v2 & {"20", "40", "41", "42"}
    ):
        return DEATH
    # v2 09 maps to FHIR "hosp" in the shipped ConceptMap, so "hosp" means hospice only alone
    if v2 & {"50", "51"} or (not v2 and (_DISPOSITION, "hosp") in codes):
        return HOSPICE
    if _readmitted(d, known):
        return READMISSION
    return None


def _died(patient: dict[str, Any], d: Discharge) -> bool:
    if patient.get("deceasedBoolean") is True:
        return True
    died = parse(patient.get("deceasedDateTime"), d.zone)
    return died is not None and day_number(d.at, died, d.zone) <= WINDOW


def _readmitted(d: Discharge, known: _Known) -> bool:
    for encounter in known.encounters.get(local_ref(d.patient), []):
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


def _became(
    session: Session, res_type: str, docs: list[dict[str, Any]]
) -> dict[str, datetime | None]:
    """When each resource first reached its current status in its current run of it (from its
    history), by ``Type/id``: one query for all."""
    history = repo.versions_of(session, res_type, sorted({doc["id"] for doc in docs}))
    out: dict[str, datetime | None] = {}
    for doc in docs:
        when = None
        for version in history.get(doc["id"], [])[:_HISTORY]:  # newest first
            if version.deleted or version.content.get("status") != doc.get("status"):
                break
            when = version.last_updated
        out[f"{res_type}/{doc['id']}"] = when
    return out


def _evidence(reference: str, at: datetime | None, d: Discharge) -> list[Evidence]:
    return [] if at is None else [Evidence(reference, at, day_number(d.at, at, d.zone))]


def _tasks_and_requests(d: Discharge, known: _Known) -> list[Evidence]:
    out: list[Evidence] = []
    for task in known.tasks.get(local_ref(d.patient), []):
        reference = f"Task/{task['id']}"
        out += _evidence(reference, _done(task, d.zone) or known.became.get(reference), d)
    for request in known.requests.get(local_ref(d.patient), []):
        reference = f"ServiceRequest/{request['id']}"
        out += _evidence(reference, known.became.get(reference), d)
    return out


def _done(task: dict[str, Any], zone: ZoneInfo) -> datetime | None:
    return parse((task.get("executionPeriod") or {}).get("end"), zone)


def _mental_health(encounter: dict[str, Any], settings: Settings) -> bool:
    wanted = {c.upper() for c in settings.monitor_mh_services}
    concepts = [encounter.get("serviceType") or {}, *encounter.get("type", [])]
    return any(
        (c.get("code") or "").upper() in wanted
        for concept in concepts
        for c in concept.get("coding", [])
    )


def _visits(settings: Settings, d: Discharge, known: _Known) -> list[Evidence]:
    out: list[Evidence] = []
    for encounter in known.encounters.get(local_ref(d.patient), []):
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
