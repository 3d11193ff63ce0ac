"""Readmission and crisis, decided as the Encounter is written (inside the intake's transaction,
through ``fhir_gateway.hooks``): for a patient with a live care plan (draft, active, or on hold)
whose discharge was at most ``monitor_readmission_days`` local calendar days before,

- an inpatient admission raises a ``readmission`` Flag on the Patient, a Communication to the
  care team, and puts the active CarePlan on hold (a draft plan stays draft: it still awaits the
  case manager's review, and the Flag tells them);
- an emergency visit raises a ``crisis`` Flag and a ``stat`` Communication: the highest priority;
- an outpatient visit raises nothing (it is a follow-up; the FUH measure counts it);
- a cancellation (A11) of that admission or visit withdraws its Flag (entered-in-error), puts the
  plan it held back to active, and tells the care team;
- the end of the readmission's stay ends its Flag; the discharge itself makes the revised plan
  (the care-plan engine replaces the plan on hold).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.hooks import WriteEvent, settings_of
from fhir_gateway.monitors._alerts import Alert, care_team_of_plan, communication, flag
from fhir_gateway.monitors._codes import CRISIS, HELD_PLAN, READMISSION, WITHDRAWN
from fhir_gateway.monitors._days import day_number, parse
from fhir_gateway.monitors._episodes import Discharge, patient_discharges
from fhir_gateway.monitors._fhir import create_once, labels_of, read, ref, save
from fhir_gateway.monitors._ids import monitor_id
from fhir_gateway.monitors._visits import ADMISSION, CANCELLED, DISCHARGED, EMERGENCY, change
from fhir_gateway.settings import Settings
from fhir_gateway.store.repository import StoredResource

__all__ = ["on_encounter", "index_discharge", "Admission"]

_CODE = {ADMISSION: READMISSION, EMERGENCY: CRISIS}


def _settings(session: Session) -> Settings:
    return settings_of(session)  # the app's, which its rules carry


@dataclass(frozen=True, slots=True)
class Admission:
    discharge: Discharge
    day: int  # local calendar days after the discharge day
    at: datetime


def on_encounter(event: WriteEvent, stored: StoredResource | None) -> None:
    before = event.before.content if event.before is not None and not event.before.deleted else None
    after = stored.content if stored is not None and not stored.deleted else None
    kind = change(before, after)
    if kind is None:
        return
    encounter = after or before
    assert encounter is not None
    if kind == CANCELLED:
        withdraw(event.session, _settings(event.session), f"Encounter/{encounter['id']}")
    elif kind == DISCHARGED:
        _end_flag(event.session, monitor_id(READMISSION, f"Encounter/{encounter['id']}"))
    else:
        admitted(event.session, _settings(event.session), encounter, kind)


def index_discharge(
    session: Session, settings: Settings, encounter: dict[str, Any]
) -> Admission | None:
    """The newest discharge with a live plan that this visit falls within the window of."""
    patient = ref(encounter, "subject")
    if not patient:
        return None
    found = None
    for discharge in patient_discharges(session, settings, patient):
        if discharge.encounter["id"] == encounter["id"]:
            continue
        at = parse((encounter.get("period") or {}).get("start"), discharge.zone) or clock.now()
        day = day_number(discharge.at, at, discharge.zone)
        if at >= discharge.at and 0 <= day <= settings.monitor_readmission_days:
            found = Admission(discharge, day, at)  # oldest first: the last match is the newest
    return found


def _alert(kind: str, encounter: dict[str, Any], admission: Admission, held: bool) -> Alert:
    d = admission.discharge
    when = admission.at.astimezone(d.zone).strftime("%Y-%m-%d %H:%M")
    since = f"day {admission.day} after the discharge of {d.at.date().isoformat()} ({d.ref})"
    if kind == ADMISSION:
        text = f"Readmitted as an inpatient on {when}, {since}." + (
            " The care plan is on hold." if held else ""
        )
    else:
        text = f"CRISIS: emergency department visit on {when}, {since}. Contact the patient now."
    extensions = [{"url": HELD_PLAN, "valueReference": {"reference": d.plan_ref}}] if held else []
    return Alert(
        codes=[_CODE[kind]],
        patient=d.patient,
        text=text,
        priority="PH" if kind == EMERGENCY else "PM",
        category="safety" if kind == EMERGENCY else "admin",
        details=[d.plan_ref, d.ref],
        encounter=f"Encounter/{encounter['id']}",
        labels=labels_of(d.plan),
        extensions=extensions,
    )


def admitted(session: Session, settings: Settings, encounter: dict[str, Any], kind: str) -> bool:
    """Raise the alert of an admission or emergency visit once; True when raised now."""
    admission = index_discharge(session, settings, encounter)
    if admission is None:
        return False
    plan = admission.discharge.plan
    held = kind == ADMISSION and plan.get("status") == "active"
    alert = _alert(kind, encounter, admission, held)
    enc_ref = f"Encounter/{encounter['id']}"
    flag_id = monitor_id(_CODE[kind], enc_ref)
    if not create_once(session, flag(flag_id, alert, settings.referral_requester)):
        return False  # a re-sent A01, an A08: the alert exists
    recipients = care_team_of_plan(plan, settings.case_manager)
    if kind == EMERGENCY:
        recipients = list(dict.fromkeys([*recipients, settings.case_manager]))
    create_once(
        session,
        communication(
            monitor_id(_CODE[kind], enc_ref, "care-team"),
            alert,
            sender=settings.referral_requester,
            recipients=recipients,
            about=[f"Flag/{flag_id}", enc_ref, admission.discharge.plan_ref],
        ),
    )
    if held:
        note = {"time": clock.to_instant(clock.now()), "text": f"On hold: {alert.text}"}
        save(session, {**plan, "status": "on-hold", "note": [*plan.get("note", []), note]})
    return True


def withdraw(session: Session, settings: Settings, enc_ref: str) -> int:
    """A11: the alerts this admission or visit raised are withdrawn; returns how many."""
    count = 0
    for code in (READMISSION, CRISIS):
        current = read(session, f"Flag/{monitor_id(code, enc_ref)}")
        if current is None or current.get("status") == "entered-in-error":
            continue
        period = {**current.get("period", {}), "end": clock.to_instant(clock.now())}
        save(session, {**current, "status": "entered-in-error", "period": period})
        _resume_plans(session, current)
        _tell_withdrawn(session, settings, current, code, enc_ref)
        count += 1
    return count


def _resume_plans(session: Session, flag_doc: dict[str, Any]) -> None:
    for ext in flag_doc.get("extension", []):
        if ext.get("url") != HELD_PLAN:
            continue
        plan = read(session, (ext.get("valueReference") or {}).get("reference"))
        if plan is not None and plan.get("status") == "on-hold":
            note = {
                "time": clock.to_instant(clock.now()),
                "text": "Resumed: the admission was cancelled (A11).",
            }
            save(session, {**plan, "status": "active", "note": [*plan.get("note", []), note]})


def _tell_withdrawn(
    session: Session, settings: Settings, flag_doc: dict[str, Any], code: str, enc_ref: str
) -> None:
    plan_ref = next(
        (
            e["valueReference"]["reference"]
            for e in flag_doc.get("extension", [])
            if e.get("url") == "http://hl7.org/fhir/StructureDefinition/flag-detail"
            and e["valueReference"]["reference"].startswith("CarePlan/")
        ),
        None,
    )
    alert = Alert(
        codes=[WITHDRAWN, code],
        patient=ref(flag_doc, "subject") or "",
        priority="PL",
        category="admin",
        text=f"Withdrawn: {enc_ref} was cancelled (A11); the earlier alert no longer applies.",
        encounter=enc_ref,
        labels=flag_doc.get("meta", {}).get("security", []),
    )
    create_once(
        session,
        communication(
            monitor_id(WITHDRAWN, code, enc_ref),
            alert,
            sender=settings.referral_requester,
            recipients=care_team_of_plan(read(session, plan_ref), settings.case_manager),
            about=[f"Flag/{flag_doc['id']}", enc_ref],
        ),
    )


def _end_flag(session: Session, flag_id: str) -> None:
    current = read(session, f"Flag/{flag_id}")
    if current is not None and current.get("status") == "active":
        period = {**current.get("period", {}), "end": clock.to_instant(clock.now())}
        save(session, {**current, "status": "inactive", "period": period})
