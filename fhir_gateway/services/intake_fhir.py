"""Da Vinci notification messages for the intake: identify, and word the answers.

Answers follow FHIR messaging for ``$process-message``: a processed message gets 200 with a
response message (MessageHeader.response.code ``ok``); one that cannot be accepted gets 400 and
an OperationOutcome, one that could not be applied 422 and an OperationOutcome, one carrying what
its sender may not write 403; a re-send gets the original answer again.

What a message may carry (the intake applies it with the rights of the client that posted it):
the types of a Da Vinci Unsolicited Notification are stored; a type that grants rights, routes
data, defines behaviour or plans care (``REFUSED``) fails the whole message, naming the entry;
any other type is skipped with a warning.
"""

from __future__ import annotations

import re
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
from fhir_gateway.context import Caller
from fhir_gateway.errors import GatewayError, Issue
from fhir_gateway.fhir.validation import parse_json
from fhir_gateway.settings import Settings

__all__ = [
    "IdentifiedFhirMessage",
    "identify",
    "ok_answer",
    "outcome_answer",
    "at_message_entry",
    "ForbiddenEntry",
    "DISCHARGE_EVENTS",
    "RECEIVER",
    "STORED",
    "REFUSED",
]

DISCHARGE_EVENTS = frozenset({"notification-discharge"})
RECEIVER = "urn:fhir-gateway:process-message"

# What a Da Vinci Unsolicited Notification carries (its profiles, and the IG's own examples),
# and a discharge's medications (linked to the discharge by ``adapters.notifications``).
STORED = frozenset(
    {
        "MessageHeader",
        "Encounter",
        "Patient",
        "Condition",
        "Coverage",
        "Location",
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "Device",
        "RelatedPerson",
        "MedicationRequest",
        "MedicationStatement",
    }
)
REFUSED = frozenset(
    {
        # rights, audit and routing
        "Consent",
        "Subscription",
        "AuditEvent",
        "Provenance",
        "Endpoint",
        "HealthcareService",
        # definitions the gateway acts on
        "ActivityDefinition",
        "PlanDefinition",
        "SearchParameter",
        "CodeSystem",
        "ValueSet",
        "ConceptMap",
        "Questionnaire",
        # plans, referrals and the work items of the engines
        "CarePlan",
        "CareTeam",
        "Goal",
        "ServiceRequest",
        "Task",
        "CommunicationRequest",
        "Communication",
        "Appointment",
        "EpisodeOfCare",
        "Flag",
        "MeasureReport",
    }
)
_ENTRY = re.compile(r"Bundle\.entry\[(\d+)\]")


class ForbiddenEntry(NotificationError):
    """An entry of a type no notification may write: the message is refused (403)."""

    code = "forbidden"


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
    caller: Caller | None = None  # who posted it; its rights apply

    @property
    def rejected(self) -> bool:
        return self.error is not None


def identify(raw: bytes, settings: Settings) -> IdentifiedFhirMessage:
    warnings: list[str] = []
    try:
        note = read_notification(
            _screened(
                parse_json(
                    raw, max_depth=settings.max_json_depth, max_values=settings.max_json_values
                ),
                warnings,
            )
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
        warnings=warnings,
    )
    allow = settings.sender_allowlist
    if allow and note.source_endpoint not in allow:
        ident.error = InvalidNotification(
            f"sender {note.source_endpoint} is not registered",
            expression="MessageHeader.source.endpoint",
        )
    return ident


def _screened(bundle: Any, warnings: list[str]) -> Any:
    """The message with the entries it may carry: a refused type raises ``ForbiddenEntry``; an
    unknown one is left out (a reference to it keeps only its display), with a warning."""
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    if not isinstance(entries, list):
        return bundle  # read_notification says what is wrong
    kept: list[Any] = []
    dropped: set[str] = set()
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        if index == 0 or not isinstance(resource, dict) or not isinstance(rtype, str):
            kept.append(entry)  # the header; or what read_notification refuses or leaves out
        elif rtype == "Patient" and _merges(resource):
            raise ForbiddenEntry(
                f"Bundle.entry[{index}]: a notification may not merge patients (Patient.link)",
                expression=f"Bundle.entry[{index}].resource.link",
            )
        elif rtype in STORED:
            kept.append(entry)
        elif rtype in REFUSED:
            raise ForbiddenEntry(
                f"Bundle.entry[{index}]: a notification may not write {rtype}",
                expression=f"Bundle.entry[{index}]",
            )
        else:
            warnings.append(
                f"Bundle.entry[{index}]: {rtype} is not part of a notification; skipped"
            )
            dropped |= {str(entry.get("fullUrl")), f"{rtype}/{resource.get('id')}"}
    if not dropped:
        return bundle
    return {**bundle, "entry": [_unlink(entry, dropped) for entry in kept]}


def _merges(patient: dict[str, Any]) -> bool:
    """A ``replaces``/``replaced-by`` link would move another patient's records (services.merge):
    merges come from HL7 A40, applied by the gateway, not from a hospital's notification."""
    links = patient.get("link")
    return isinstance(links, list) and any(
        isinstance(link, dict) and link.get("type") in ("replaces", "replaced-by") for link in links
    )


def _unlink(node: Any, dropped: set[str]) -> Any:
    if isinstance(node, dict):
        if node.get("reference") in dropped:
            rest = {k: v for k, v in node.items() if k != "reference"}
            return rest or {"display": "not kept: skipped from the message"}
        return {k: _unlink(v, dropped) for k, v in node.items()}
    if isinstance(node, list):
        return [_unlink(v, dropped) for v in node]
    return node


def at_message_entry(exc: GatewayError, note: Notification) -> GatewayError:
    """``exc`` with the transaction's entry numbers turned into the message's."""

    def renumber(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            index = note.message_entry(int(match.group(1)))
            return f"Bundle.entry[{index if index is not None else '?'}]"

        return _ENTRY.sub(one, text)

    issues = [
        Issue(
            renumber(i.diagnostics),
            code=i.code,
            severity=i.severity,
            expression=[renumber(e) for e in i.expression],
        )
        for i in exc.issues
    ]
    return type(exc)(renumber(exc.message), issues=issues, headers=exc.headers)


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
