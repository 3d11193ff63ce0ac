"""Delivering queued caring contacts: the outbox worker hands each row of a caring channel here.

- ``caring-email``: an e-mail through SMTP (``adapters.messaging.send_email``; host, port, From,
  STARTTLS or implicit TLS, credentials and a timeout from the settings);
- ``caring-webhook``: a small JSON POST to the messaging provider the deployment chose (SMS,
  WhatsApp), signed like the rest-hooks (``X-FHIR-Gateway-Signature``, HMAC-SHA256 with
  ``contacts_webhook_secret``) and carrying ``X-FHIR-Gateway-Delivery`` (the row id, the same on
  each retry, so the provider can drop a repeat).

``send`` answers as the worker's retry policy reads HTTP: the SMTP success code (250) or the
provider's status; ``None`` (no answer, a timeout, a temporary SMTP 4xx) is retried with backoff;
``refused`` (a permanent SMTP 5xx) is a dead letter at once. Before sending, ``withdrawn_because``
asks whether the message may still go (the request revoked, the consent withdrawn); after
delivery, ``delivered`` records a Communication (completed, ``basedOn`` the request) and completes
the request, in the transaction that records the attempt.
"""

from __future__ import annotations

import ssl
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from sqlalchemy.orm import Session

from adapters.messaging import (
    Email,
    MessageRefused,
    MessageUnavailable,
    SmtpConfig,
    post_message,
    send_email,
)
from fhir_gateway import clock
from fhir_gateway.contacts._codes import CHANNELS, MEDIUM, category
from fhir_gateway.contacts._consent import permits_contact
from fhir_gateway.notifications import DELIVERY_HEADER, SIGNATURE_HEADER, sign
from fhir_gateway.privacy import consents_of
from fhir_gateway.services.lookup import read, save
from fhir_gateway.settings import Settings
from fhir_gateway.store.keyed_ids import keyed_id
from fhir_gateway.store.outbox import OutboxRow

__all__ = ["Sent", "CaringChannels"]

_SENT_NS = uuid.UUID("a4c2e9d0-7b13-4f68-8e2a-5d9b1c3f7e40")


@dataclass(frozen=True, slots=True)
class Sent:
    status: int | None  # SMTP 250 or the provider's HTTP status; None: no answer (retry)
    error: str | None = None
    retry_after: str | None = None
    refused: bool = False  # permanently refused: a dead letter, no retry


class CaringChannels:
    """The caring-contact channels of one worker. ``transport``: the webhook's httpx seam;
    ``ssl_context``: the SMTP server's trust (tests use a local server)."""

    names = frozenset(CHANNELS.values())

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self._transport = transport
        self._ssl_context = ssl_context

    def smtp_config(self) -> SmtpConfig:
        s = self.settings
        password = s.contacts_smtp_password.get_secret_value() if s.contacts_smtp_password else None
        return SmtpConfig(
            host=str(s.contacts_smtp_host),
            port=s.contacts_smtp_port,
            sender=str(s.contacts_smtp_from),
            starttls=s.contacts_smtp_starttls,
            implicit_tls=s.contacts_smtp_ssl,
            username=s.contacts_smtp_username,
            password=password,
            timeout=s.contacts_smtp_timeout,
            ssl_context=self._ssl_context,
        )

    # -- the worker's three questions ----------------------------------------------------------

    def withdrawn_because(self, session: Session, row: OutboxRow) -> str | None:
        request = read(session, row.focus)
        if request is None or request.get("status") != "active":
            return "the caring contact was stopped before its turn (request no longer active)"
        patient = (request.get("subject") or {}).get("reference") or ""
        if not permits_contact(consents_of(session, patient), clock.now()):
            return "the patient's consent to caring contacts was withdrawn"
        return None

    def send(self, row: OutboxRow) -> Sent:
        message = orjson.loads(row.body)
        if row.channel == CHANNELS["email"]:
            return self._email(message)
        return self._webhook(row)

    def delivered(self, session: Session, row: OutboxRow) -> None:
        request = read(session, row.focus)
        if request is None:
            return
        message = orjson.loads(row.body)
        save(session, _communication(keyed_id(_SENT_NS, str(row.id)), request, message))
        save(session, {**request, "status": "completed"})

    # -- transports ------------------------------------------------------------------------------

    def _email(self, message: dict[str, Any]) -> Sent:
        if not self.settings.contacts_smtp_host or not self.settings.contacts_smtp_from:
            return Sent(None, "no SMTP server configured (contacts_smtp_host, contacts_smtp_from)")
        email = Email(
            to=message["to"],
            subject=message["subject"],
            text=message["text"],
            language=message["language"],
            reference=message["reference"],
        )
        try:
            send_email(self.smtp_config(), email)
        except MessageRefused as exc:
            return Sent(exc.code, str(exc), refused=True)
        except MessageUnavailable as exc:
            return Sent(None, str(exc))
        return Sent(250)

    def _webhook(self, row: OutboxRow) -> Sent:
        headers = {DELIVERY_HEADER: str(row.id)}
        secret = self.settings.contacts_webhook_secret
        if secret:
            stamp = int(clock.now().timestamp())
            headers[SIGNATURE_HEADER] = sign(secret.get_secret_value(), row.body, stamp)
        try:
            answer = post_message(
                row.url,
                row.body,
                headers=headers,
                timeout=self.settings.outbox_timeout,
                transport=self._transport,
            )
        except MessageUnavailable as exc:
            return Sent(None, str(exc))
        ok = 200 <= answer.status < 300
        return Sent(
            answer.status,
            None if ok else f"HTTP {answer.status}: {answer.text}",
            answer.retry_after,
        )


def _communication(
    comm_id: str, request: dict[str, Any], message: dict[str, Any]
) -> dict[str, Any]:
    medium = MEDIUM.get(str(message.get("channel")))
    doc: dict[str, Any] = {
        "resourceType": "Communication",
        "id": comm_id,
        "language": message.get("language") or "en",
        "basedOn": [{"reference": f"CommunicationRequest/{request['id']}"}],
        "status": "completed",
        "category": [category()],
        "subject": request.get("subject"),
        "sent": clock.to_instant(clock.now()),
        "recipient": request.get("recipient") or [request.get("subject")],
        "sender": request.get("sender"),
        "payload": [{"contentString": message.get("text") or ""}],
    }
    if medium:
        doc["medium"] = [{"coding": [medium]}]
    if request.get("encounter"):
        doc["encounter"] = request["encounter"]
    return {k: v for k, v in doc.items() if v}
