"""Follow-up after hospitalisation (FUH) as the pages show it: the monitors' outcome of a
discharge (``monitors.fuh_outcomes``: never recomputed here) read against today.

The worklist asks for the discharges of the last ``LOOKBACK_DAYS`` only: one query for the engine's
plans touched since then (a discharge's plan is made at the discharge), then the monitors'
evaluation of the patients discharged in that window, each kind of evidence read for all of them at
once. Its cost grows neither with the recent discharges nor with the referrals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.orm import Session

from fhir_gateway import monitors
from fhir_gateway.context import Caller
from fhir_gateway.monitors import Outcome
from fhir_gateway.settings import Settings
from fhir_gateway.store.search import match_fields
from fhir_gateway.web._display import Display
from fhir_gateway.web._patient_reader import PatientReader

__all__ = [
    "LOOKBACK_DAYS",
    "FollowUpWindow",
    "window",
    "in_words",
    "recent_outcomes",
    "latest_outcome",
    "PatientFollowUp",
    "patient_follow_up",
]

LOOKBACK_DAYS = 60
_PLAN_IDENTIFIER = "urn:fhir-gateway:careplan"  # the care-plan engine's plans: one per discharge
_EXCLUDED = {
    "death": "the patient died",
    "hospice": "discharged to hospice",
    "readmission": "readmitted within 30 days",
}


@dataclass(frozen=True, slots=True)
class FollowUpWindow:
    """One follow-up window (7 or 30 days) of one discharge, as of today."""

    state: str  # met, open, missed, excluded
    last_day: date  # the window's last local day
    met_on: date | None = None
    days_left: int = 0
    exclusion: str | None = None


def window(outcome: Outcome, days: int, today: date) -> FollowUpWindow:
    last_day = outcome.local_date + timedelta(days=days)
    if outcome.exclusion:
        return FollowUpWindow("excluded", last_day, exclusion=outcome.exclusion)
    hit = outcome.within(days)
    if hit is not None:
        return FollowUpWindow("met", last_day, met_on=hit.at.date())
    if today > last_day:
        return FollowUpWindow("missed", last_day)
    return FollowUpWindow("open", last_day, days_left=(last_day - today).days)


def in_words(w: FollowUpWindow, shown: Display) -> str:
    if w.state == "met":
        return f"met on {shown.day(w.met_on)}"
    if w.state == "missed":
        return f"missed (the window closed {shown.day(w.last_day)})"
    if w.state == "excluded":
        return f"excluded: {_EXCLUDED.get(w.exclusion or '', w.exclusion)}"
    left = "last day today" if w.days_left == 0 else f"{_days(w.days_left)} left"
    return f"not yet, {left} (until {shown.day(w.last_day)})"


def _days(n: int) -> str:
    return f"{n} day{'s' if n != 1 else ''}"


def recent_outcomes(
    session: Session, caller: Caller, settings: Settings, shown: Display
) -> list[Outcome]:
    """The outcomes of the discharges of the last ``LOOKBACK_DAYS`` whose plan the caller sees."""
    since = shown.today - timedelta(days=LOOKBACK_DAYS)
    plans = match_fields(
        session,
        "CarePlan",
        [("identifier", f"{_PLAN_IDENTIFIER}|"), ("_lastUpdated", f"ge{since.isoformat()}")],
        {"patient": ("subject", "reference")},
        caller=caller,
    )
    seen = {f"CarePlan/{p['id']}" for p in plans}
    patients = sorted({p["patient"] for p in plans if p["patient"]})
    outcomes = monitors.fuh_outcomes_for(session, settings, since, shown.today, patients)
    return [o for o in outcomes if o.discharge.plan_ref in seen]


def latest_outcome(
    session: Session, settings: Settings, patient: str, visible: set[str] | None, today: date
) -> Outcome | None:
    """The patient's latest discharge's outcome (``visible``: its plan must be one of these)."""
    outcomes = monitors.fuh_outcomes(session, settings, date.min, today, patient)
    shown = [o for o in outcomes if visible is None or o.discharge.plan_ref in visible]
    return max(shown, key=lambda o: o.discharge.at, default=None)


@dataclass(frozen=True, slots=True)
class PatientFollowUp:
    """The patient page's words for the latest discharge's follow-up."""

    discharged: str
    discharged_iso: str
    seven: str
    thirty: str
    seven_state: str
    thirty_state: str


def patient_follow_up(reader: PatientReader) -> PatientFollowUp | None:
    plans = reader.find("CarePlan", [("subject", reader.patient_ref)])
    visible = {f"CarePlan/{p['id']}" for p in plans}
    shown = reader.clock
    outcome = latest_outcome(
        reader.session, reader.settings, reader.patient_ref, visible, shown.today
    )
    if outcome is None:
        return None
    seven, thirty = (window(outcome, days, shown.today) for days in (7, 30))
    return PatientFollowUp(
        shown.day(outcome.local_date),
        shown.iso(outcome.local_date),
        in_words(seven, shown),
        in_words(thirty, shown),
        seven.state,
        thirty.state,
    )
