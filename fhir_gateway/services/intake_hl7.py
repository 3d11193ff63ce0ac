"""HL7 v2 for the intake: identify a raw message (key, sender, patient, source time), apply its
Bundle, and word its ACK. Uses only the public API of ``adapters.hl7v2``.

Adapter gap filled here: the adapter has no notion of a sender allow-list, so an unknown sender
is refused with ``UnknownSender`` (a ``MessageRejected``: the ACK is AR).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.abdm import AbdmSystems
from adapters.hl7v2 import (
    ConversionResult,
    ConvertOptions,
    HL7Error,
    Message,
    MessageRejected,
    Segment,
    SenderProfile,
    build_ack,
    convert,
    empty_batch,
    parse,
    to_fhir_instant,
)
from fhir_gateway.jurisdiction import IN
from fhir_gateway.settings import Settings

__all__ = [
    "UnknownSender",
    "IdentifiedHL7Message",
    "options_from",
    "identify",
    "ack",
    "failure_ack",
    "source_time",
    "sender_allowed",
    "check_types",
    "APPLIED_TYPES",
]

DISCHARGE_EVENTS = frozenset({"A03"})
# What the adapter may write: the clinical types it maps, and its record of the message itself.
# The HL7 intake writes as the gateway (the adapter, not the sender, picks types and ids), so an
# entry of any other type is an adapter defect and is not applied.
APPLIED_TYPES = frozenset(
    {
        "Patient",
        "Encounter",
        "Condition",
        "Observation",
        "AllergyIntolerance",
        "Procedure",
        "Coverage",
        "MedicationRequest",
        "MedicationDispense",
        "MedicationAdministration",
        "RelatedPerson",
        "Practitioner",
        "PractitionerRole",
        "Organization",
        "Location",
        "MessageHeader",
        "Provenance",
    }
)

log = logging.getLogger("fhir_gateway.intake")


class UnknownSender(MessageRejected):
    code = 207
    text = "Application internal error"


@dataclass(slots=True)
class IdentifiedHL7Message:
    """What the inbox needs to know about a message before it is applied."""

    key_text: str | None
    sender: str | None
    control_id: str | None
    patient_key: str | None
    event: str | None
    source_time: datetime | None
    result: ConversionResult | None = None
    error: HL7Error | None = None  # AE when parsed, AR when a MessageRejected
    zone: str = "UTC"
    warnings: list[str] = field(default_factory=list)
    batch: Segment | None = None  # the header of an empty batch: acknowledged, nothing to apply

    @property
    def rejected(self) -> bool:
        return isinstance(self.error, MessageRejected)


def options_from(settings: Settings) -> ConvertOptions:
    keys = set(settings.sender_zones) | set(settings.sender_countries)
    return ConvertOptions(
        default_sender=_profile(settings, settings.default_sender_zone, settings.default_country),
        senders={
            key: _profile(
                settings,
                settings.sender_zones.get(key, settings.default_sender_zone),
                settings.sender_countries.get(key, settings.default_country),
            )
            for key in keys
        },
        mappings_dir=settings.hl7_mappings_dir,
        max_bytes=settings.mllp_max_frame_bytes,
    )


def _profile(settings: Settings, zone: str, country: str) -> SenderProfile:
    """A sender's profile: its zone and country, and for an Indian facility the ABDM identifiers."""
    if country.upper() != IN:
        return SenderProfile(zone=zone, country=country)
    systems = AbdmSystems(
        settings.abha_number_system, settings.abha_address_system, settings.hfr_system
    )
    return SenderProfile(
        zone=zone, country=country, abdm=systems, abdm_authorities=settings.abdm_authorities
    )


def sender_allowed(settings: Settings, application: str, facility: str) -> bool:
    allow = settings.sender_allowlist
    return not allow or f"{application}|{facility}" in allow or facility in allow


def identify(raw: bytes, options: ConvertOptions, settings: Settings) -> IdentifiedHL7Message:
    try:
        result = convert(raw, options=options)
    except HL7Error as exc:
        return _unconverted(raw, exc, options, settings)
    except Exception as exc:  # noqa: BLE001 - an adapter defect: the message is kept and answered AE
        log.exception("HL7 v2 message could not be converted (adapter defect)")
        error = HL7Error(
            f"internal error ({exc.__class__.__name__}); the server log has the details"
        )
        return _unconverted(raw, error, options, settings)
    app, facility = result.sending_application, result.sending_facility
    zone = options.sender(app, facility).zone
    ident = IdentifiedHL7Message(
        key_text=f"hl7v2|{app}|{facility}|{result.message_control_id}",
        sender=f"{app}|{facility}",
        control_id=result.message_control_id,
        patient_key=result.patient_key,
        event=result.event,
        source_time=source_time(result.message, zone),
        result=result,
        zone=zone,
        warnings=list(result.warnings),
    )
    if not sender_allowed(settings, app, facility):
        ident.error = UnknownSender(
            f"sender {app}|{facility} is not registered", segment="MSH", field=4
        )
    return ident


def _unconverted(
    raw: bytes, error: HL7Error, options: ConvertOptions, settings: Settings
) -> IdentifiedHL7Message:
    """A message that did not convert: keep what its header still says (for the key and the ACK)."""
    batch = empty_batch(raw, max_bytes=options.max_bytes)
    if batch is not None:
        return _empty_batch(batch, settings)
    try:
        msg = parse(raw, max_bytes=options.max_bytes)
    except HL7Error:
        return IdentifiedHL7Message(None, None, None, None, None, None, error=error)
    msh = msg.msh
    app, facility, control = msh.value(3), msh.value(4), msh.value(10)
    if not error.ack_code == "AR" and not sender_allowed(settings, app, facility):
        error = UnknownSender(f"sender {app}|{facility} is not registered", segment="MSH", field=4)
    return IdentifiedHL7Message(
        key_text=f"hl7v2|{app}|{facility}|{control}" if control else None,
        sender=f"{app}|{facility}",
        control_id=control or None,
        patient_key=None,
        event=msh.one(9)(2) or None,
        source_time=None,
        error=error,
    )


def _empty_batch(header: Segment, settings: Settings) -> IdentifiedHL7Message:
    """A batch holding no message (a keep-alive): acknowledged AA; its control id is BHS-11."""
    app, facility, control = header.value(3), header.value(4), header.value(11)
    ident = IdentifiedHL7Message(
        key_text=f"hl7v2-batch|{app}|{facility}|{control}" if control else None,
        sender=f"{app}|{facility}",
        control_id=control or None,
        patient_key=None,
        event=None,
        source_time=None,
        batch=header,
        warnings=["the batch holds no message"],
    )
    if not sender_allowed(settings, app, facility):
        ident.error = UnknownSender(
            f"sender {app}|{facility} is not registered", segment=header.name, field=4
        )
    return ident


def source_time(message: Message | None, zone: str) -> datetime | None:
    """When the event happened: EVN-2, else MSH-7 (None when neither is a usable time)."""
    if message is None:
        return None
    evn = message.first("EVN")
    for raw in (evn.value(2) if evn is not None else "", message.msh.value(7)):
        if not raw:
            continue
        try:
            return datetime.fromisoformat(to_fhir_instant(raw, zone))
        except ValueError:
            continue
    return None


def ack(ident: IdentifiedHL7Message) -> bytes:
    if ident.result is None:
        return build_ack(ident.batch, "AA").encode()
    return build_ack(ident.result.message, "AA", warnings=ident.result.ack_warnings).encode()


def failure_ack(raw: bytes, ident: IdentifiedHL7Message | None, error: HL7Error) -> bytes:
    message: Any = ident.result.message if ident is not None and ident.result is not None else raw
    return build_ack(message, error=error).encode()


def check_types(bundle: dict[str, Any]) -> None:
    """Refuse (AE) a converted Bundle with an entry of a type the HL7 intake does not write."""
    for index, entry in enumerate(bundle.get("entry") or []):
        url = str((entry.get("request") or {}).get("url") or "")
        rtype = url.lstrip("/").split("?", 1)[0].split("/", 1)[0]
        if rtype not in APPLIED_TYPES:
            raise HL7Error(
                f"the conversion produced a {rtype or 'typeless'} entry ({index}), which the HL7 intake "
                "does not write; the message was not applied"
            )
