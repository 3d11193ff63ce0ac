"""Replies: a Communication from the patient about a caring contact (``inResponseTo`` the sent
Communication, or ``basedOn`` its CommunicationRequest) lands on the case manager's worklist as
a ``caring-contact-reply`` work item (a Flag like the monitors' own; replies are read in office
hours, which every message says). A reply that asks to stop (its text ``STOP`` or an equivalent
word below, or a ``reasonCode`` caring-contacts|stop) ends the series as well.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.contacts._codes import CONTACTS_SYSTEM, STOP, is_caring
from fhir_gateway.contacts._series import stop
from fhir_gateway.hooks import WriteEvent
from fhir_gateway.monitors import CARING_CONTACT_REPLY, Alert, create_once, flag, monitor_id
from fhir_gateway.privacy import labels_of as labels
from fhir_gateway.privacy import merge_labels
from fhir_gateway.services.lookup import read
from fhir_gateway.settings import Settings

__all__ = ["STOP_WORDS", "asks_to_stop", "caring_contact_of", "on_reply"]

# What people text to unsubscribe (carriers' keywords; Hindi, Kannada and Spanish equivalents).
STOP_WORDS = frozenset(
    {
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "बंद",
        "रोकें",
        "ನಿಲ್ಲಿಸಿ",
        "ALTO",
        "PARAR",
        "BAJA",
    }
)
_MAX_QUOTE = 300


def _text(comm: dict[str, Any]) -> str:
    return " ".join(
        str(p["contentString"]) for p in comm.get("payload") or [] if p.get("contentString")
    ).strip()


def asks_to_stop(comm: dict[str, Any]) -> bool:
    """A reply whose whole text is a stop word (``stop``, ``Stop.``), or coded as a stop."""
    coded = any(
        c.get("system") == CONTACTS_SYSTEM and c.get("code") == STOP
        for concept in comm.get("reasonCode") or []
        for c in concept.get("coding") or []
    )
    word = re.sub(r"[\s.!।]+", "", _text(comm)).upper()
    return coded or word in STOP_WORDS


def caring_contact_of(session: Session, comm: dict[str, Any]) -> dict[str, Any] | None:
    """The CommunicationRequest of the caring contact this Communication answers, or None."""
    for ref in comm.get("basedOn") or []:
        request = read(session, ref.get("reference"))
        if (
            request is not None
            and request.get("resourceType") == "CommunicationRequest"
            and is_caring(request)
        ):
            return request
    for ref in comm.get("inResponseTo") or []:
        sent = read(session, ref.get("reference"))
        if sent is not None and is_caring(sent):
            for based in sent.get("basedOn") or []:
                request = read(session, based.get("reference"))
                if request is not None and is_caring(request):
                    return request
    return None


def on_reply(event: WriteEvent, stored: Any, settings: Settings) -> None:
    if stored is None or stored.deleted or event.before is not None:
        return  # a reply is new; its later edits are not new replies
    comm = stored.content
    if is_caring(comm) and not comm.get("inResponseTo"):
        return  # a caring contact the gateway sent, not a reply
    request = caring_contact_of(event.session, comm)
    if request is None:
        return
    patient = (request.get("subject") or {}).get("reference") or ""
    if (comm.get("sender") or {}).get("reference") != patient:
        return  # only the patient's own replies (a relay posting for them names the patient)
    stopping = asks_to_stop(comm)
    if stopping:
        stop(
            event.session,
            patient,
            f"The patient replied asking to stop (Communication/{stored.res_id})",
        )
    quote = _text(comm)[:_MAX_QUOTE] or "(no text)"
    what = "asked to stop; the remaining caring contacts were cancelled" if stopping else "replied"
    alert = Alert(
        codes=[CARING_CONTACT_REPLY],
        patient=patient,
        category="contact",
        priority="PM",
        text=f"The patient {what} to a caring contact: “{quote}”. Read it and answer in office hours; "
        "if it speaks of a crisis, call the patient now.",
        details=[f"Communication/{stored.res_id}", f"CommunicationRequest/{request['id']}"],
        labels=merge_labels(labels(comm), labels(request)),
    )
    flag_id = monitor_id(CARING_CONTACT_REPLY, f"Communication/{stored.res_id}")
    create_once(event.session, flag(flag_id, alert, settings.case_manager))
