"""What adherence is measured from, for one patient, read as the gateway (bounded): dispenses,
administrations, the orders and Medications they name, and inpatient stays."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_gateway.adherence._pdc import HospitalStay
from fhir_gateway.context import SYSTEM
from fhir_gateway.services.discharge import INPATIENT_CLASSES
from fhir_gateway.services.lookup import read
from fhir_gateway.store import repository as repo
from fhir_gateway.store.referrers import may_refer
from fhir_gateway.store.search import match_ids
from fhir_gateway.store.tables import idx_reference

__all__ = ["MedicationRecord", "gather", "patients_with_medications", "local_date", "MAX_EVENTS"]

MAX_EVENTS = 1000  # dispenses (and administrations) of one patient read at most
MEDICATION_EVENTS = ("MedicationDispense", "MedicationAdministration")
_CANCELLED = frozenset({"entered-in-error", "cancelled"})


@dataclass(slots=True)
class MedicationRecord:
    dispenses: list[dict[str, Any]] = field(default_factory=list)
    administrations: list[dict[str, Any]] = field(default_factory=list)
    stays: list[HospitalStay] = field(default_factory=list)
    in_hospital: bool = False
    _cache: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    def resolve(self, session: Session, reference: str | None) -> dict[str, Any] | None:
        """An order or Medication a fill names, read once."""
        if not reference:
            return None
        if reference not in self._cache:
            self._cache[reference] = read(session, reference)
        return self._cache[reference]


def local_date(value: str | None, zone: ZoneInfo) -> date | None:
    """The calendar day of a FHIR date or dateTime in ``zone`` (a time without offset is local)."""
    if not value or len(value) < 10:
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(zone).date() if moment.tzinfo else moment.date()


def _search(session: Session, res_type: str, patient: str) -> list[dict[str, Any]]:
    ids = match_ids(session, res_type, [("patient", patient)], caller=SYSTEM, limit=MAX_EVENTS)
    return [s.content for s in repo.read_many(session, res_type, ids) if not s.deleted]


def _stays(encounters: list[dict[str, Any]], zone: ZoneInfo, today: date) -> list[HospitalStay]:
    stays = []
    for enc in encounters:
        if (enc.get("class") or {}).get("code") not in INPATIENT_CLASSES:
            continue
        if enc.get("status") in _CANCELLED or enc.get("status") == "planned":
            continue
        period = enc.get("period") or {}
        start = local_date(period.get("start"), zone)
        if start is None:
            continue
        end = local_date(period.get("end"), zone)
        if end is None:
            end = start if enc.get("status") == "finished" else today
        stays.append(HospitalStay(start, max(start, end)))
    return stays


def gather(session: Session, patient: str, zone: ZoneInfo, today: date) -> MedicationRecord:
    if not may_refer(session, MEDICATION_EVENTS, "patient", patient):
        return MedicationRecord()  # one index probe, not two searches, for most patients
    record = MedicationRecord(
        dispenses=_search(session, "MedicationDispense", patient),
        administrations=_search(session, "MedicationAdministration", patient),
    )
    if record.dispenses or record.administrations:
        record.stays = _stays(_search(session, "Encounter", patient), zone, today)
        record.in_hospital = any(s.start <= today <= s.end for s in record.stays)
    return record


def patients_with_medications(session: Session) -> list[str]:
    """Every Patient a dispense or an administration names (the periodic run's candidates)."""
    rows = session.execute(
        select(idx_reference.c.target_id)
        .where(
            idx_reference.c.res_type.in_(MEDICATION_EVENTS),
            idx_reference.c.target_type == "Patient",
            idx_reference.c.param == "patient",
        )
        .distinct()
    ).all()
    return sorted(f"Patient/{row[0]}" for row in rows)
