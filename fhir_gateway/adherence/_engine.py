"""When adherence is measured: at every write of a patient's dispense, administration, order or
Encounter (a write hook, inside that write's transaction), and for every patient with medication
data on the monitors' schedule (the clock moves: a refill becomes late with no write at all)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.adherence._assess import (
    AdherenceAssessment,
    ClassAdherence,
    PdcWindow,
    assess,
)
from fhir_gateway.adherence._catalog import load_catalog
from fhir_gateway.adherence._codes import codesystem
from fhir_gateway.adherence._gather import gather, patients_with_medications
from fhir_gateway.adherence._ids import lock
from fhir_gateway.adherence._record import (
    end_item,
    flag_id,
    low_adherence,
    missed_injection,
    raise_item,
    refill_late,
    unknown_supply,
    write_observation,
)
from fhir_gateway.errors import Conflict
from fhir_gateway.fhir.references import Reference
from fhir_gateway.hooks import WriteEvent, settings_of
from fhir_gateway.monitors import ADHERENCE_UNKNOWN, LOW_ADHERENCE, MISSED_INJECTION, REFILL_LATE
from fhir_gateway.services.lookup import save
from fhir_gateway.settings import Settings
from fhir_gateway.store.db import Database
from fhir_gateway.store.repository import StoredResource

__all__ = ["recompute", "on_write", "run_all", "WATCHED"]

log = logging.getLogger("fhir_gateway.adherence")
WATCHED = ("MedicationDispense", "MedicationAdministration", "MedicationRequest", "Encounter")
_RETRIES = 3


def _settings(session: Session) -> Settings:
    return settings_of(session)  # the app's, which its rules carry


def window_for(settings: Settings, zone: ZoneInfo) -> PdcWindow:
    today = clock.now().astimezone(zone).date()
    return PdcWindow(
        start=today - timedelta(days=settings.adherence_window_days - 1),
        end=today,
        refill_grace=settings.adherence_refill_grace_days,
    )


def recompute(
    session: Session, settings: Settings, patient: str, *, cleanup: bool = False
) -> AdherenceAssessment | None:
    """Measure one patient now and bring the Observations and work items up to date.
    ``cleanup``: also when the patient has no medication data left (a fill was deleted), so
    that what was derived from it ends; otherwise such a patient costs two searches."""
    if Reference.id_of(patient, "Patient") is None:
        return None
    zone = ZoneInfo(settings.default_sender_zone)
    window = window_for(settings, zone)
    record = gather(session, patient, zone, window.end)
    if not record.dispenses and not record.administrations and not cleanup:
        return None
    lock(session, "adherence", patient)
    catalog = load_catalog(settings.adherence_medications_dir)
    found = assess(
        catalog,
        record.dispenses,
        record.administrations,
        record.stays,
        window,
        zone,
        lambda ref: record.resolve(session, ref),
    )
    for med_class in catalog.classes:  # a class with nothing left: its results end too
        found.classes.setdefault(med_class.id, ClassAdherence(med_class, None))
    _write(session, settings, patient, found, window)
    given = {m.injectable.id for m in found.injections}
    for lai in catalog.injectables:
        if lai.id not in given:
            end_item(session, flag_id(MISSED_INJECTION, patient, lai.id))
    return found


def _write(
    session: Session,
    settings: Settings,
    patient: str,
    found: AdherenceAssessment,
    window: PdcWindow,
) -> None:
    author = settings.referral_requester
    for result in found.classes.values():
        obs = write_observation(session, patient, result, window.start, window.end)
        pdc = result.coverage.pdc if result.coverage is not None else None
        low = flag_id(LOW_ADHERENCE, patient, result.med_class.id)
        if pdc is not None and not result.unknown and pdc < settings.adherence_threshold:
            raise_item(
                session,
                low,
                low_adherence(patient, result, settings.adherence_threshold, obs),
                author,
            )
        else:
            end_item(session, low)
        late = flag_id(REFILL_LATE, patient, result.med_class.id)
        if result.late_days:
            raise_item(
                session,
                late,
                refill_late(patient, result, settings.adherence_refill_grace_days),
                author,
            )
        else:
            end_item(session, late)
    for missed in found.injections:
        fid = flag_id(MISSED_INJECTION, patient, missed.injectable.id)
        if missed.overdue:
            raise_item(session, fid, missed_injection(patient, missed), author)
        else:
            end_item(session, fid)
    for unknown in found.unknown:
        fid = flag_id(ADHERENCE_UNKNOWN, patient, f"MedicationDispense/{unknown.dispense['id']}")
        raise_item(session, fid, unknown_supply(patient, unknown), author)
    for dispense in found.known:  # a supply now known (a corrected dispense): its item ends
        end_item(
            session, flag_id(ADHERENCE_UNKNOWN, patient, f"MedicationDispense/{dispense['id']}")
        )


def _patient_of(content: dict[str, object] | None) -> str | None:
    for field in ("subject", "patient"):
        value = (content or {}).get(field)
        if isinstance(value, dict) and isinstance(value.get("reference"), str):
            return str(value["reference"])
    return None


def on_write(event: WriteEvent, stored: StoredResource | None) -> None:
    """A write hook (``WATCHED`` types): measure the patient it is about again."""
    deleted = stored is None or stored.deleted
    content = event.before.content if deleted and event.before is not None else None
    content = content if deleted else stored.content  # type: ignore[union-attr]
    patient = _patient_of(content)
    if not patient:
        return
    if deleted and event.res_type == "MedicationDispense" and event.before is not None:
        dispense = f"MedicationDispense/{event.before.res_id}"
        end_item(event.session, flag_id(ADHERENCE_UNKNOWN, patient, dispense))
    events = ("MedicationDispense", "MedicationAdministration")
    recompute(event.session, _settings(event.session), patient, cleanup=event.res_type in events)


def _seed(session: Session, settings: Settings) -> None:
    save(session, codesystem(load_catalog(settings.adherence_medications_dir)))


def _one(session: Session, settings: Settings, patient: str) -> None:
    recompute(session, settings, patient)


def run_all(database: Database, settings: Settings) -> int:
    """Every patient with medication data, each in its own transaction; returns how many were
    measured (one failing is logged and does not stop the others)."""
    patients = database.read(patients_with_medications)
    if not patients:
        return 0
    _retry(database, _seed, settings)  # two workers seeding at once: the loser finds it stored
    checked = 0
    for patient in patients:
        try:
            _retry(database, _one, settings, patient)
            checked += 1
        except Exception:  # one patient's data must not stop the others' work items
            log.exception("adherence: %s not measured", patient)
    return checked


def _retry(database: Database, fn: Callable[..., None], *args: Any) -> None:
    for attempt in range(_RETRIES):
        try:
            database.write(fn, *args)
            return
        except Conflict:  # another worker wrote the same item a moment ago: look again
            if attempt == _RETRIES - 1:
                raise
