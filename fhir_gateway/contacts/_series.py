"""A series of caring contacts: made at discharge (``start``), ended on the patient's request, a
STOP reply or a withdrawn consent (``stop``).

A series is one CommunicationRequest per scheduled message, all sharing a ``groupIdentifier``
(the discharge): ``status`` active, ``category`` caring-contact, ``subject`` and ``recipient`` the
patient, ``occurrenceDateTime``, ``medium`` (e-mail or SMS: how the patient can be reached),
``language`` and ``payload`` (the text in the patient's language), ``requester``/``sender`` the
case manager. Ids are derived from the discharge, so a re-announced discharge finds its series.
Stopping revokes each remaining request (``statusReason`` says why); the due-sender never sends a
revoked one, and a message already queued is withdrawn when its turn comes.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock, jurisdiction
from fhir_gateway.contacts._codes import (
    CARING_CONTACT,
    CONTACTS_SYSTEM,
    MEDIUM,
    SERIES_SYSTEM,
    category,
    is_caring,
)
from fhir_gateway.contacts._consent import permits_contact
from fhir_gateway.contacts._data import activity, plan
from fhir_gateway.contacts._messages import compose, templates_of
from fhir_gateway.contacts._reach import address_of
from fhir_gateway.contacts._schedule import occurrences
from fhir_gateway.privacy import consents_of
from fhir_gateway.services.lookup import read, save, search
from fhir_gateway.settings import Settings
from fhir_gateway.store.keyed_ids import keyed_id

__all__ = ["SeriesStart", "start", "stop", "remaining", "media", "STOPPABLE"]

log = logging.getLogger("fhir_gateway.contacts")
_NAMESPACE = uuid.UUID("6d1f0a52-8c3e-4b7a-9f15-2e4c7b0d9a63")
STOPPABLE = "active,on-hold,draft"


def media(settings: Settings) -> list[str]:
    """The media this deployment can send, in its order of preference."""
    usable = {
        "email": bool(settings.contacts_smtp_host),
        "sms": bool(settings.contacts_webhook_url),
    }
    return [m for m in settings.contacts_media if usable.get(m)]


class SeriesStart:
    """What a series is made from: the patient, the stay, when, where (zone and country)."""

    def __init__(self, patient: str, encounter: str, at: datetime, zone: str, country: str) -> None:
        self.patient, self.encounter, self.at = patient, encounter, at
        self.zone, self.country = zone, country


def _discharged_at(encounter: dict[str, Any]) -> datetime:
    end = (encounter.get("period") or {}).get("end")
    if isinstance(end, str) and len(end) > 10:
        try:
            return datetime.fromisoformat(end.replace("Z", "+00:00"))
        except ValueError:
            pass
    return clock.now()


def discharge_of(
    encounter: dict[str, Any], patient: str, settings: Settings, sender: str | None, zone: str
) -> SeriesStart:
    country = jurisdiction.country_of(settings, sender)
    return SeriesStart(
        patient, f"Encounter/{encounter['id']}", _discharged_at(encounter), zone, country
    )


def start(session: Session, settings: Settings, discharge: SeriesStart) -> list[str]:
    """The series of this discharge, when the patient consented and can be reached; returns the
    references of the requests made (none: no consent, no address, or the patient died)."""
    patient = read(session, discharge.patient)
    now = clock.now()
    if patient is None or patient.get("deceasedBoolean") or patient.get("deceasedDateTime"):
        return []
    if not permits_contact(consents_of(session, discharge.patient), now):
        log.info("no caring contacts for %s: no consent to be contacted", discharge.patient)
        return []
    address = address_of(patient, media(settings), now)
    if address is None:
        log.info("no caring contacts for %s: no address a channel can use", discharge.patient)
        return []
    message = compose(templates_of(activity(session)), patient, discharge.country)
    made = []
    for index, when in enumerate(occurrences(plan(session), discharge.at, discharge.zone)):
        if when <= now:
            continue  # a late consent or a late discharge message: only what is still ahead
        req_id = keyed_id(_NAMESPACE, f"{discharge.encounter}|{index}")
        if read(session, f"CommunicationRequest/{req_id}") is not None:
            continue  # made already (a discharge announced again)
        save(session, _request(req_id, discharge, when, address.medium, message, settings))
        made.append(f"CommunicationRequest/{req_id}")
    return made


def _request(
    req_id: str,
    discharge: SeriesStart,
    when: datetime,
    medium: str,
    message: Any,
    settings: Settings,
) -> dict[str, Any]:
    series = keyed_id(_NAMESPACE, discharge.encounter)
    return {
        "resourceType": "CommunicationRequest",
        "id": req_id,
        "language": message.language,
        "groupIdentifier": {"system": SERIES_SYSTEM, "value": series},
        "status": "active",
        "category": [category()],
        "priority": "routine",
        "medium": [{"coding": [MEDIUM[medium]]}],
        "subject": {"reference": discharge.patient},
        "encounter": {"reference": discharge.encounter},
        "payload": [{"contentString": message.text}],
        "occurrenceDateTime": clock.to_instant(when),
        "authoredOn": clock.to_instant(clock.now()),
        "requester": {"reference": settings.case_manager},
        "recipient": [{"reference": discharge.patient}],
        "sender": {"reference": settings.case_manager},
    }


def remaining(session: Session, patient: str) -> list[dict[str, Any]]:
    """The patient's caring contacts not yet sent or stopped."""
    found = search(
        session,
        "CommunicationRequest",
        [
            ("subject", patient),
            ("status", STOPPABLE),
            ("category", f"{CONTACTS_SYSTEM}|{CARING_CONTACT}"),
        ],
    )
    return [r for r in found if is_caring(r)]


def stop(session: Session, patient: str, reason: str) -> int:
    """Revoke every remaining caring contact of ``patient``; returns how many."""
    requests = remaining(session, patient)
    for request in requests:
        save(
            session,
            {
                **request,
                "status": "revoked",
                "statusReason": {
                    "coding": [{"system": CONTACTS_SYSTEM, "code": "stopped"}],
                    "text": reason,
                },
            },
        )
    if requests:
        log.info("caring contacts of %s stopped: %s (%d revoked)", patient, reason, len(requests))
    return len(requests)
