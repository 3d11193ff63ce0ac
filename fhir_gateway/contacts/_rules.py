"""How caring contacts plug into the gateway's writes (``install``, idempotent):

- a discharge (``services.discharge``) starts the patient's series, when they consented and can
  be reached; a new discharge replaces the series of an earlier one;
- a caring-contacts Consent: withdrawn (inactive, rejected, a deny) stops the series; given
  after the discharge, it starts the series of the latest discharge of the past year (the
  messages still ahead);
- a Communication from the patient about a caring contact: a work item, and STOP ends the series.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from fhir_gateway import clock, hooks
from fhir_gateway.contacts._codes import is_caring
from fhir_gateway.contacts._consent import permits_contact
from fhir_gateway.contacts._replies import on_reply
from fhir_gateway.contacts._series import SeriesStart, discharge_of, remaining, start, stop
from fhir_gateway.hooks import WriteEvent, settings_of
from fhir_gateway.privacy import consents_of
from fhir_gateway.services import discharge
from fhir_gateway.services.lookup import search
from fhir_gateway.settings import Settings
from fhir_gateway.store.repository import StoredResource

__all__ = ["install"]


def install(rules: hooks.Rules, settings: Settings | None = None) -> None:
    """Register the series' rules (they read the app's settings from the session)."""
    del settings
    rules.on_discharge(_on_discharge)
    rules.after_write("Consent", _on_consent)
    rules.after_write("Communication", _on_communication)


def _settings(session: Session) -> Settings:
    return settings_of(session)  # the app's, which its rules carry


def _on_discharge(session: Session, context: discharge.DetectedDischarge) -> None:
    if not context.patient:
        return
    settings = _settings(session)
    # a REST discharge names no sender: the default sender's zone, as for a time without offset
    zone = context.zone if context.source != "rest" else settings.default_sender_zone
    made = discharge_of(context.encounter_resource, context.patient, settings, context.sender, zone)
    _replace_series(session, settings, made)


def _replace_series(session: Session, settings: Settings, made: SeriesStart) -> None:
    """A new discharge replaces the series of an earlier one (one series per patient at a time)."""
    earlier = [
        r
        for r in remaining(session, made.patient)
        if (r.get("encounter") or {}).get("reference") != made.encounter
    ]
    if earlier:
        stop(session, made.patient, f"A new series began with the discharge {made.encounter}")
    start(session, settings, made)


def _on_consent(event: WriteEvent, stored: StoredResource | None) -> None:
    doc = stored.content if stored is not None and not stored.deleted else None
    doc = doc or (event.before.content if event.before is not None else None)
    if not is_caring(doc):
        return
    patient = ((doc or {}).get("patient") or {}).get("reference") or ""
    if not patient:
        return
    if not permits_contact(consents_of(event.session, patient), clock.now()):
        stop(event.session, patient, "The patient withdrew their consent to caring contacts")
    elif not remaining(event.session, patient):
        _start_after_consent(event.session, patient)


def _start_after_consent(session: Session, patient: str) -> None:
    """Consent given after the discharge: the series of the latest discharge of the past year."""
    since = (clock.now() - timedelta(days=366)).strftime("%Y-%m-%d")
    stays = search(
        session, "Encounter", [("patient", patient), ("status", "finished"), ("date", f"ge{since}")]
    )
    stays = [s for s in stays if (s.get("period") or {}).get("end")]
    if not stays:
        return
    latest = max(stays, key=lambda s: str(s["period"]["end"]))
    settings = _settings(session)
    start(
        session,
        settings,
        discharge_of(latest, patient, settings, None, settings.default_sender_zone),
    )


def _on_communication(event: WriteEvent, stored: StoredResource | None) -> None:
    on_reply(event, stored, _settings(event.session))
