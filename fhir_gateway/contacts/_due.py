"""The due-sender: each caring contact whose time has come becomes an outbox row, in the same
transaction as the request's mark (``meta.tag`` queued and the row id), so it is queued exactly
once. What the worker calls on its schedule (``contacts_interval``), with the gateway's clock.

Before queuing, the rules are asked again: a consent withdrawn or ended since the series began
stops the series (no write event told us of an end date passing); a patient no configured
channel can reach any more puts the request on hold with the reason.
"""

from __future__ import annotations

import orjson
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.contacts._codes import (
    CARING_CONTACT,
    CHANNELS,
    CONTACTS_SYSTEM,
    MEDIUM,
    OUTBOX_EXT,
)
from fhir_gateway.contacts._consent import permits_contact
from fhir_gateway.contacts._data import activity
from fhir_gateway.contacts._messages import templates_of
from fhir_gateway.contacts._reach import Address, address_of
from fhir_gateway.contacts._series import media, stop
from fhir_gateway.context import SYSTEM
from fhir_gateway.monitors import lock
from fhir_gateway.privacy import consents_of
from fhir_gateway.services.lookup import read, save
from fhir_gateway.settings import Settings
from fhir_gateway.store import outbox
from fhir_gateway.store.search import match_ids

__all__ = ["QUEUED", "enqueue_due", "medium_of"]

QUEUED = "queued"
_TAG = {"system": CONTACTS_SYSTEM, "code": QUEUED}


def medium_of(request: dict) -> str | None:  # type: ignore[type-arg]
    codes = {c.get("code") for m in request.get("medium") or [] for c in m.get("coding") or []}
    return next((m for m, coding in MEDIUM.items() if coding["code"] in codes), None)


def enqueue_due(session: Session, settings: Settings) -> int:
    """Queue the caring contacts due now (at most ``contacts_batch``); returns how many."""
    lock(session, "caring-contacts")  # one due-sender at a time across workers (PostgreSQL)
    now = clock.now()
    ids = match_ids(
        session,
        "CommunicationRequest",
        [
            ("status", "active"),
            ("category", f"{CONTACTS_SYSTEM}|{CARING_CONTACT}"),
            ("occurrence", "le" + now.strftime("%Y-%m-%dT%H:%M:%SZ")),
            ("_tag:not", f"{CONTACTS_SYSTEM}|{QUEUED}"),
        ],
        caller=SYSTEM,
        limit=settings.contacts_batch,
    )
    queued = 0
    for req_id in ids:
        request = read(session, f"CommunicationRequest/{req_id}")
        if request is not None and request.get("status") == "active":
            queued += _queue(session, settings, request)
    return queued


def _queue(session: Session, settings: Settings, request: dict) -> int:  # type: ignore[type-arg]
    patient_ref = (request.get("subject") or {}).get("reference") or ""
    patient = read(session, patient_ref)
    now = clock.now()
    if patient is None or not permits_contact(consents_of(session, patient_ref), now):
        stop(
            session, patient_ref, "The patient's consent to caring contacts was withdrawn or ended"
        )
        return 0
    wanted = medium_of(request)
    usable = media(settings)
    address = address_of(patient, [m for m in [wanted, *usable] if m in usable], now)
    if address is None:
        save(session, _held(request))
        return 0
    row = _enqueue(session, settings, request, address)
    meta = dict(request.get("meta") or {})
    meta["tag"] = [*(meta.get("tag") or []), _TAG]
    extension = [e for e in request.get("extension") or [] if e.get("url") != OUTBOX_EXT]
    save(
        session,
        {
            **request,
            "meta": meta,
            "extension": [*extension, {"url": OUTBOX_EXT, "valueInteger": row}],
        },
    )
    return 1


def _held(request: dict) -> dict:  # type: ignore[type-arg]
    return {
        **request,
        "status": "on-hold",
        "statusReason": {
            "coding": [{"system": CONTACTS_SYSTEM, "code": "unreachable"}],
            "text": "No e-mail address or mobile number a configured channel can use",
        },
    }


def _enqueue(session: Session, settings: Settings, request: dict, address: Address) -> int:  # type: ignore[type-arg]
    language = str(request.get("language") or "en")
    templates = templates_of(activity(session))
    subject = templates.messages.get(language, templates.messages.get("en", ("", "")))[0]
    text = next((p.get("contentString") for p in request.get("payload") or []), "") or ""
    body = {
        "channel": address.medium,
        "to": address.value,
        "subject": subject,
        "text": text,
        "language": language,
        "reference": f"CommunicationRequest/{request['id']}",
    }
    url = (
        f"mailto:{address.value}"
        if address.medium == "email"
        else str(settings.contacts_webhook_url)
    )
    return outbox.enqueue(
        session,
        channel=CHANNELS[address.medium],
        method="SMTP" if address.medium == "email" else "POST",
        url=url,
        body=orjson.dumps(body),
        content_type="application/json",
        focus=f"CommunicationRequest/{request['id']}",
    )
