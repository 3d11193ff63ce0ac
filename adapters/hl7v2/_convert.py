"""The public conversion: text → parsed message → resource plans → transaction Bundle."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ._codes import load_code_maps
from ._datatypes import MappingContext
from ._datetime import to_fhir_instant
from ._errors import (
    DataTypeError,
    HL7Error,
    RequiredFieldMissing,
    SegmentSequenceError,
    UnsupportedEvent,
    UnsupportedMessage,
    UnsupportedProcessing,
    UnsupportedVersion,
)
from ._events import ADT_TRIGGERS, EventRule, rule_for
from ._map_clinical import (
    map_allergies,
    map_coverages,
    map_diagnoses,
    map_observations,
    map_procedures,
)
from ._map_header import map_sender, message_header, provenance
from ._map_patient import map_merge, map_patient, map_related_persons
from ._map_pharmacy import PHARMACY_MESSAGES, STRUCTURES, map_pharmacy
from ._map_visit import map_encounter
from ._options import ConvertOptions
from ._parse import Message, Segment, parse
from ._patch import RFC3986, Plan, Plans, uuid_for

__all__ = ["ConversionResult", "convert", "SUPPORTED_VERSIONS"]

SUPPORTED_VERSIONS = frozenset(
    {"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2"}
)
_DEFAULT_OPTIONS = ConvertOptions()
# Segments mapped here, or carried by ADT messages and knowingly left out (no warning).
_PATIENT_SEGMENTS = frozenset(
    {
        "NK1",
        "AL1",
        "IAM",
        "IN1",
        "IN2",
        "IN3",
        "GT1",
        "DB1",
        "ROL",
        "ARV",
        "PDA",
        "ACC",
        "UB1",
        "UB2",
        "SFT",
        "NTE",
        "DRG",
        "RF1",
        "NPU",
        "OBR",
    }
)


@dataclass(slots=True)
class ConversionResult:
    """A converted message: the transaction Bundle and what identifies the message."""

    bundle: dict[str, Any]
    event: str
    message_type: str
    message_control_id: str
    sending_application: str
    sending_facility: str
    version: str
    patient_key: str | None
    warnings: list[str] = field(default_factory=list)
    message: Message | None = field(default=None, repr=False)
    # The warnings the ACK carries (ERR severity W): what was changed or left out of the data.
    ack_warnings: list[HL7Error] = field(default_factory=list)
    # A visit event (A01, A03, …) without PV1: the patient was written, no Encounter was.
    no_encounter: bool = False


def convert(text: str | bytes, *, options: ConvertOptions | None = None) -> ConversionResult:
    """Convert one HL7 v2 ADT or pharmacy (RDE, RDS, RAS) message to a FHIR R4 transaction
    Bundle, or raise an HL7Error."""
    options = options or _DEFAULT_OPTIONS
    msg = parse(text, max_bytes=options.max_bytes)
    msh = msg.msh
    message_type, event = _check_header(msg)
    if options.strict:
        from ._strict import validate_strict

        validate_strict(msg)
    app, facility = msh.value(3), msh.value(4)
    codes = load_code_maps(
        str(options.mappings_dir) if options.mappings_dir else None, options.local_base
    )
    profile = options.sender(app, facility)
    ctx = MappingContext(
        codes.scoped(profile.country, (f"{app}|{facility}", facility)),
        profile.zone,
        profile.country,
        abdm=profile.abdm,
        abdm_authorities={k.upper(): v for k, v in profile.abdm_authorities.items()},
    )
    ctx.warnings.extend(msg.warnings)
    _report_cleaned(ctx, msg)
    _report_unknown_segments(ctx, msg)
    recorded = _recorded(ctx, msh)
    plans = Plans()
    sender = map_sender(ctx, plans, msh)
    no_encounter = False
    if message_type in PHARMACY_MESSAGES:
        user_dir = str(options.mappings_dir) if options.mappings_dir else None
        patient, orders = map_pharmacy(ctx, plans, msg, message_type, user_dir)
        patients, focus = [patient], orders
    else:
        rule = rule_for(event)
        patients, encounters = _map_body(ctx, plans, msg, rule)
        focus = patients + encounters
        no_encounter = bool(rule.visit and patients and not encounters)
    if no_encounter:
        ctx.warn_sender(
            SegmentSequenceError(f"no PV1 segment: ADT^{event} created no Encounter", segment="PV1")
        )
    bundle = _bundle(ctx, msg, event, plans, sender, focus, recorded)
    key = patients[0].key if patients else None
    return ConversionResult(
        bundle=bundle,
        event=event,
        message_type=message_type,
        message_control_id=msh.value(10),
        sending_application=app,
        sending_facility=facility,
        version=msh.value(12),
        patient_key=(f"{key.get('system', '')}|{key['value']}" if key else None),
        warnings=ctx.warnings,
        message=msg,
        ack_warnings=ctx.ack_warnings,
        no_encounter=no_encounter,
    )


def _check_header(msg: Message) -> tuple[str, str]:
    """MSH-9 decides the message type and event (EVN-1 only stands in when an ADT's MSH-9.2 is
    empty)."""
    msh = msg.msh
    mtype = msh.one(9)
    if not mtype(1):
        raise RequiredFieldMissing("MSH-9 message type is empty", segment="MSH", field=9)
    if mtype(1) in PHARMACY_MESSAGES:
        return mtype(1), _check_pharmacy(msg, mtype(1), mtype(2), mtype(3))
    if mtype(1) != "ADT":
        raise UnsupportedMessage(
            f"{mtype(1)}^{mtype(2)} is not an ADT, RDE, RDS or RAS message",
            segment="MSH",
            field=9,
            component=1,
        )
    event = mtype(2)
    if not event:
        evn = msg.first("EVN")
        event = evn.value(1) if evn else ""
        if not event:
            raise RequiredFieldMissing(
                "MSH-9.2 trigger event is empty", segment="MSH", field=9, component=2
            )
        msg.warnings.append(f"MSH-9.2 empty: event {event} taken from EVN-1")
    if event not in ADT_TRIGGERS:
        raise UnsupportedEvent(
            f"ADT^{event} is not an ADT trigger", segment="MSH", field=9, component=2
        )
    _check_rest(msh)
    return "ADT", event


def _check_pharmacy(msg: Message, message_type: str, event: str, structure: str) -> str:
    """RDE^O11/O01, RDS^O13/O01, RAS^O17/O01, with a message structure (MSH-9.3) of theirs."""
    if event not in PHARMACY_MESSAGES[message_type]:
        known = " or ".join(sorted(PHARMACY_MESSAGES[message_type]))
        raise UnsupportedEvent(
            f"{message_type}^{event or '(empty)'} is not supported: the event must be {known}",
            segment="MSH",
            field=9,
            component=2,
        )
    if structure and structure not in STRUCTURES:
        raise UnsupportedMessage(
            f"message structure {structure!r} is not one of {', '.join(sorted(STRUCTURES))}",
            segment="MSH",
            field=9,
            component=3,
        )
    _check_rest(msg.msh)
    return event


def _check_rest(msh: Segment) -> None:
    version = msh.value(12)
    if not version:
        raise RequiredFieldMissing("MSH-12 version is empty", segment="MSH", field=12)
    if version not in SUPPORTED_VERSIONS:
        raise UnsupportedVersion(
            f"HL7 version {version!r} is not 2.3 to 2.8", segment="MSH", field=12
        )
    processing = msh.value(11)
    if processing and processing not in ("P", "T", "D"):
        raise UnsupportedProcessing(
            f"processing id {processing!r} is not P, T or D", segment="MSH", field=11
        )
    if not msh.value(10):
        raise RequiredFieldMissing("MSH-10 message control id is empty", segment="MSH", field=10)


def _recorded(ctx: MappingContext, msh: Segment) -> str:
    raw = msh.value(7)
    if not raw:
        raise RequiredFieldMissing("MSH-7 date/time of message is empty", segment="MSH", field=7)
    try:
        return to_fhir_instant(raw, ctx.zone)
    except ValueError as exc:
        raise DataTypeError(f"MSH-7 {raw!r} is not a date/time", segment="MSH", field=7) from exc


def _report_cleaned(ctx: MappingContext, msg: Message) -> None:
    """Characters no value may hold (NUL, other controls) were removed by the parser: say where."""
    for segment, sequence, field_no in msg.cleaned:
        ctx.warn_sender(
            DataTypeError(
                f"{segment}-{field_no} held NUL or other control characters; they were removed",
                segment=segment,
                sequence=sequence,
                field=field_no,
            )
        )


@lru_cache(maxsize=1)
def _standard_segments() -> frozenset[str]:
    import importlib

    names: set[str] = set()
    for v in ("2_3", "2_4", "2_5", "2_5_1", "2_6", "2_7", "2_8", "2_8_2"):
        names.update(importlib.import_module(f"hl7apy.v{v}.segments").SEGMENTS)
    return frozenset(names)


def _report_unknown_segments(ctx: MappingContext, msg: Message) -> None:
    known = _standard_segments()
    for seg in msg.segments:
        if seg.name.startswith("Z"):
            ctx.warnings.append(f"{seg.name} (line {seg.position}): Z-segment ignored")
        elif seg.name not in known:
            ctx.warnings.append(f"{seg.name} (line {seg.position}): unknown segment ignored")


def _map_body(
    ctx: MappingContext, plans: Plans, msg: Message, rule: EventRule
) -> tuple[list[Plan], list[Plan]]:
    """Walk the segments in order: each PID opens a patient, each PV1 a visit of that patient."""
    patients: list[Plan] = []
    encounters: list[Plan] = []
    patient: Plan | None = None
    encounter: Plan | None = None
    segs = msg.segments
    groups: dict[str, list[Segment]] = {}
    for i, seg in enumerate(segs):
        name = seg.name
        if name == "PID":
            _flush(ctx, plans, groups, patient, encounter)
            nxt = segs[i + 1] if i + 1 < len(segs) else None
            pd1 = nxt if nxt is not None and nxt.name == "PD1" else None
            patient = map_patient(ctx, plans, seg, pd1)
            if rule.patient_active is not None:
                patient.add("active", "boolean", rule.patient_active)
            patients.append(patient)
            encounter = None
        elif patient is None:
            continue
        elif name == "MRG" and rule.merge:
            map_merge(ctx, plans, patient, seg)
        elif name == "PV1" and rule.visit:
            _flush(ctx, plans, groups, patient, encounter)
            nxt = segs[i + 1] if i + 1 < len(segs) else None
            pv2 = nxt if nxt is not None and nxt.name == "PV2" else None
            encounter = map_encounter(ctx, plans, seg, pv2, patient, rule, msg.control_id)
            encounters.append(encounter)
        elif name in ("NK1", "AL1", "IAM", "IN1", "DG1", "PR1", "OBX"):
            groups.setdefault(name, []).append(seg)
    _flush(ctx, plans, groups, patient, encounter)
    if not patients:
        skipped = sorted({s.name for s in segs[1:] if s.name not in ("EVN", "SFT")})
        ctx.warnings.append(
            "no PID segment: no patient resources"
            + (f"; {', '.join(skipped)} not mapped" if skipped else "")
        )
    return patients, encounters


def _flush(
    ctx: MappingContext,
    plans: Plans,
    groups: dict[str, list[Segment]],
    patient: Plan | None,
    encounter: Plan | None,
) -> None:
    """Map the segments collected for the current patient/visit, then start afresh."""
    if patient is not None and groups:
        map_related_persons(ctx, plans, patient, groups.get("NK1", []))
        map_allergies(ctx, plans, groups.get("AL1", []) + groups.get("IAM", []), patient)
        map_diagnoses(ctx, plans, groups.get("DG1", []), patient, encounter)
        map_procedures(ctx, plans, groups.get("PR1", []), patient, encounter)
        map_coverages(ctx, plans, groups.get("IN1", []), patient)
        map_observations(ctx, plans, groups.get("OBX", []), patient, encounter)
    groups.clear()
    return None


def _bundle(
    ctx: MappingContext,
    msg: Message,
    event: str,
    plans: Plans,
    sender: Plan | None,
    focus: list[Plan],
    recorded: str,
) -> dict[str, Any]:
    msh = msg.msh
    message_key = (msh.value(3), msh.value(4), msh.value(10))
    posts: list[dict[str, Any]] = []
    patches: list[dict[str, Any]] = []
    for plan in plans:
        post, patch = plan.entries()
        posts.append(post)
        if patch["resource"]["parameter"]:
            patches.append(patch)
    header = message_header(ctx, msh, event, sender, focus, message_key)
    prov = provenance(
        ctx,
        msh,
        msg.first("EVN"),
        sender,
        [p.full_url for p in plans],
        header["fullUrl"],
        recorded,
        message_key,
    )
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "identifier": {"system": RFC3986, "value": "urn:uuid:" + uuid_for("message", *message_key)},
        "timestamp": recorded,
        "entry": [*posts, *patches, header, prov],
    }
