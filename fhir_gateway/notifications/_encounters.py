"""Da Vinci Unsolicited Notifications to the EHRs that subscribed to admissions and discharges (a
Subscription with ``channel.type = message`` and Encounter criteria): when the intake or the
care-plan engine applies an admit or a discharge, it calls ``notify_encounter_event`` inside its
transaction, and each matching EHR gets a message Bundle at its ``$process-message`` endpoint."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.notifications._dispatch import active_specs, base_url, matches
from fhir_gateway.notifications._numbering import defer
from fhir_gateway.notifications._payloads import DAVINCI_EVENTS, davinci_message
from fhir_gateway.notifications._subscriptions import Spec
from fhir_gateway.notifications._visibility import caller_from_json, disclosed, visible_copy
from fhir_gateway.services.lookup import read
from fhir_gateway.store import outbox

__all__ = ["notify_encounter_event", "on_discharge", "on_encounter_stored", "process_message_url"]

FHIR_JSON = "application/fhir+json"


def process_message_url(endpoint: str) -> str:
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("$process-message") else f"{endpoint}/$process-message"


def _context(session: Session, encounter: dict[str, Any]) -> list[dict[str, Any]]:
    """What the receiver needs to understand the event: Patient, diagnoses, facility, attending."""
    refs = [
        (encounter.get("subject") or {}).get("reference"),
        (encounter.get("serviceProvider") or {}).get("reference"),
    ]
    refs += [(d.get("condition") or {}).get("reference") for d in encounter.get("diagnosis", [])]
    refs += [(p.get("individual") or {}).get("reference") for p in encounter.get("participant", [])]
    found = (read(session, r) for r in dict.fromkeys(r for r in refs if r))
    return [doc for doc in found if doc is not None]


def notify_encounter_event(session: Session, event: str, encounter_ref: str) -> int:
    """Queue ``event`` (notification-admit | notification-discharge) about ``encounter_ref`` for
    every EHR subscribed to it (numbered and queued when the transaction commits); returns how
    many."""
    if event not in DAVINCI_EVENTS:
        raise ValueError(f"{event!r} is not one of {', '.join(DAVINCI_EVENTS)}")
    subscribed = [s for s in active_specs(session) if s.kind == "message"]
    if not subscribed:
        return 0  # nobody to tell: the Encounter need not be read
    encounter = read(session, encounter_ref)
    if encounter is None:
        return 0
    targets = [s for s in subscribed if matches(session, s, "Encounter", encounter["id"])]
    others = _context(session, encounter) if targets else []
    return sum(_enqueue(session, spec, event, encounter, others) for spec in targets)


def _enqueue(
    session: Session,
    spec: Spec,
    event: str,
    encounter: dict[str, Any],
    others: list[dict[str, Any]],
) -> bool:
    viewer = caller_from_json(outbox.viewer_of(session, spec.id))
    shown = visible_copy(session, viewer, encounter)
    if shown is None:
        return False
    context = [c for c in (visible_copy(session, viewer, doc) for doc in others) if c is not None]
    destination = process_message_url(spec.endpoint)
    bundle = davinci_message(
        event,
        encounter=shown,
        others=context,
        source_endpoint=base_url(session) or "urn:fhir-gateway",
        destination=destination,
        timestamp=clock.to_instant(clock.now()),
    )
    disclosures = disclosed(session)

    def enqueue(session: Session, number: int) -> None:
        outbox.enqueue(
            session,
            channel="message",
            method="POST",
            url=destination,
            body=orjson.dumps(bundle),
            content_type=FHIR_JSON,
            headers=spec.headers,
            subscription=spec.id,
            event_number=number,
            focus=f"Encounter/{encounter['id']}",
            disclosures=disclosures,
        )

    defer(session, spec.id, enqueue)  # numbered when the transaction commits (``_numbering``)
    return True


def on_discharge(session: Session, context: Any) -> None:
    """The ``services.discharge`` hook: every discharge the gateway detects is announced."""
    notify_encounter_event(session, "notification-discharge", context.encounter)


_ADMITTED = "in-progress"
_INPATIENT = {"IMP", "ACUTE", "NONAC"}


def on_encounter_stored(event: Any, stored: Any) -> None:
    """An inpatient Encounter that becomes in-progress (an A01, an A06 to inpatient, a FHIR admit
    or a REST write) is an admission: the subscribed EHRs are told, once per transition."""
    if stored is None or event.after is None:
        return
    encounter = event.after
    if (
        encounter.get("status") != _ADMITTED
        or (encounter.get("class") or {}).get("code") not in _INPATIENT
    ):
        return
    before = event.before.content if event.before is not None else {}
    if before.get("status") == _ADMITTED and (before.get("class") or {}).get("code") in _INPATIENT:
        return  # already admitted: an update to a stay is not a new admission
    notify_encounter_event(event.session, "notification-admit", stored.relative)
