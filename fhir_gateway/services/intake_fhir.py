"""Da Vinci notification messages for the intake: identify, and word the answers.

Answers follow FHIR messaging for ``$process-message``: a processed message gets 200 with a
response message (MessageHeader.response.code ``ok``); one that cannot be accepted gets 400 and
an OperationOutcome, one that could not be applied 422 and an OperationOutcome; a re-send gets
the original answer again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from adapters.notifications import (
    InvalidNotification,
    Notification,
    NotificationError,
    read_notification,
    response_message,
)
from fhir_gateway import clock
from fhir_gateway.errors import GatewayError
from fhir_gateway.fhir.validation import parse_json
from fhir_gateway.settings import Settings

__all__ = [
    "IdentifiedFhirMessage",
    "identify",
    "ok_answer",
    "outcome_answer",
    "DISCHARGE_EVENTS",
    "RECEIVER",
]

DISCHARGE_EVENTS = frozenset({"notification-discharge"})
RECEIVER = "urn:fhir-gateway:process-message"


@dataclass(slots=True)
class IdentifiedFhirMessage:
    key_text: str | None
    sender: str | None
    control_id: str | None
    patient_key: str | None
    event: str | None
    source_time: datetime | None
    note: Notification | None = None
    error: NotificationError | None = None
    zone: str = "UTC"
    warnings: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        return self.error is not None


def identify(raw: bytes, settings: Settings) -> IdentifiedFhirMessage:
    try:
        note = read_notification(
            parse_json(raw, max_depth=settings.max_json_depth, max_values=settings.max_json_values)
        )
    except GatewayError as exc:
        return _refused(InvalidNotification(exc.message))
    except NotificationError as exc:
        return _refused(exc)
    ident = IdentifiedFhirMessage(
        key_text=note.idempotency_key,
        sender=note.source_endpoint,
        control_id=note.message_id or note.bundle_identifier,
        patient_key=note.patient_key,
        event=note.event,
        source_time=_timestamp(note.timestamp),
        note=note,
        zone=settings.sender_zones.get(note.source_endpoint, settings.default_sender_zone),
    )
    allow = settings.sender_allowlist
    if allow and note.source_endpoint not in allow:
        ident.error = InvalidNotification(
            f"sender {note.source_endpoint} is not registered",
            expression="MessageHeader.source.endpoint",
        )
    return ident


def _refused(error: NotificationError) -> IdentifiedFhirMessage:
    return IdentifiedFhirMessage(None, None, None, None, None, None, error=error)


def _timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else None


def ok_answer(note: Notification) -> bytes:
    body = response_message(
        note, "ok", timestamp=clock.to_instant(clock.now()), receiver_endpoint=RECEIVER
    )
    return orjson.dumps(body)


def outcome_answer(
    reason: str, *, code: str = "processing", expression: str | None = None
) -> bytes:
    issue: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": reason}
    if expression:
        issue["expression"] = [expression]
    return orjson.dumps({"resourceType": "OperationOutcome", "issue": [issue]})
