"""Pharmacy messages → MedicationRequest, MedicationDispense, MedicationAdministration.

RDE^O11 / RDE^O01 (an encoded order), RDS^O13 / RDS^O01 (dispenses), RAS^O17 / RAS^O01
(administrations). The segments are read in order: PID (and PD1) is the patient, PV1 the visit,
each ORC opens an order group (a group without ORC opens at its first RXO/RXE/RXD/RXA, as some
senders do); in a group each RXD and RXA is one event, and an RXR or NTE belongs to the RXO, RXE,
RXD or RXA before it. What each segment fills is data (``mappings/hl7v2/segment-*.json``).

The order is keyed on its placer number (ORC-2), else the filler number (ORC-3), else on the
patient, the drug and the order time: a dispense names its order by the same key, so it links to
the order an earlier RDE stored (or creates it from what the dispense says, if it came first).
A dispense or an administration is keyed on its patient, its order and its own counters and time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._datatypes import MappingContext, hd_system
from ._errors import MessageTooLarge, RequiredFieldMissing, SegmentSequenceError
from ._events import EventRule
from ._map_clinical import _code_key
from ._map_patient import map_patient
from ._map_visit import map_encounter
from ._medication_values import read_value
from ._parse import Message, Segment
from ._patch import Plan, Plans, derived_identifier
from ._segment_maps import SegmentMap, segment_map, set_path

__all__ = ["PHARMACY_MESSAGES", "STRUCTURES", "MAX_ORDERS", "MAX_EVENTS", "map_pharmacy"]

PHARMACY_MESSAGES: dict[str, frozenset[str]] = {
    "RDE": frozenset({"O11", "O01"}),
    "RDS": frozenset({"O13", "O01"}),
    "RAS": frozenset({"O17", "O01"}),
}
# MSH-9.3 message structures these messages may declare (v2.3.1/2.4 name the O01 forms).
STRUCTURES = frozenset({"RDE_O11", "RDE_O01", "RDS_O13", "RDS_O01", "RAS_O17", "RAS_O01"})
MAX_ORDERS = 50  # order groups in one message
MAX_EVENTS = 100  # RXD or RXA segments in one message
_MAX_ATTACHED = 10  # RXR/NTE/TQ1 kept per segment they belong to
_EVENT_SEGMENT = {"RDS": "RXD", "RAS": "RXA"}
_ORDER_MAP = "segment-order-to-medicationrequest"
_EVENT_MAP = {
    "RXD": "segment-rxd-to-medicationdispense",
    "RXA": "segment-rxa-to-medicationadministration",
}
_PLACER_TYPE = "PLAC"
_FILLER_TYPE = "FILL"
_GROUP_SEGMENTS = frozenset({"RXO", "RXE", "RXD", "RXA"})

# Top-level elements the segment maps fill: (FHIR type, repeating, JSON name of a choice).
_ELEMENTS: dict[str, tuple[str, bool, str | None]] = {
    "status": ("code", False, None),
    "category": ("CodeableConcept", True, None),
    "priority": ("code", False, None),
    "authoredOn": ("dateTime", False, None),
    "requester": ("Reference", False, None),
    "reasonCode": ("CodeableConcept", True, None),
    "note": ("Annotation", True, None),
    "dosageInstruction": ("Dosage", True, None),
    "dispenseRequest": ("backbone", False, None),
    "type": ("CodeableConcept", False, None),
    "quantity": ("Quantity", False, None),
    "daysSupply": ("Quantity", False, None),
    "whenHandedOver": ("dateTime", False, None),
    "performer": ("backbone", True, None),
    "statusReason": ("CodeableConcept", True, None),
    "dosage": ("backbone", False, None),
}


@dataclass(slots=True)
class _Group:
    """One order group: its ORC and the segments under it (those a map may name, by name)."""

    orc: Segment | None
    segments: dict[str, list[Segment]] = field(default_factory=dict)
    attached: dict[int, dict[str, list[Segment]]] = field(default_factory=dict)  # by position
    events: list[Segment] = field(default_factory=list)

    def first(self, name: str) -> Segment | None:
        found = self.segments.get(name)
        return found[0] if found else None

    def of(self, seg: Segment | None, name: str) -> Segment | None:
        found = self.attached.get(seg.position, {}).get(name) if seg is not None else None
        return found[0] if found else None


def _groups(msg: Message) -> tuple[list[Segment], list[_Group]]:
    """(PID/PD1/PV1/PV2 segments in order, the order groups), bounded."""
    head: list[Segment] = []
    groups: list[_Group] = []
    anchor: Segment | None = None
    events = 0
    for seg in msg.segments[1:]:
        name = seg.name
        if name in ("PID", "PD1", "PV1", "PV2") and not groups:
            head.append(seg)
            continue
        if name == "ORC" or (name in _GROUP_SEGMENTS and not groups):
            if len(groups) == MAX_ORDERS:
                raise MessageTooLarge(
                    f"more than {MAX_ORDERS} order groups (ORC) in one message", segment="ORC"
                )
            groups.append(_Group(seg if name == "ORC" else None))
            anchor = None
            if name == "ORC":
                continue
        if not groups:
            continue
        group = groups[-1]
        if name in ("RXD", "RXA"):
            events += 1
            if events > MAX_EVENTS:
                raise MessageTooLarge(
                    f"more than {MAX_EVENTS} {name} segments in one message", segment=name
                )
            group.events.append(seg)
        if name in _GROUP_SEGMENTS:
            anchor = seg
        elif anchor is not None and name in ("RXR", "NTE", "TQ1"):
            kept = group.attached.setdefault(anchor.position, {}).setdefault(name, [])
            if len(kept) < _MAX_ATTACHED:
                kept.append(seg)
            if name != "TQ1":
                continue
        kept = group.segments.setdefault(name, [])
        if len(kept) < _MAX_ATTACHED or name in ("RXD", "RXA"):
            kept.append(seg)
    return head, groups


def _interpret(
    ctx: MappingContext, plans: Plans, smap: SegmentMap, segments: dict[str, Segment | None]
) -> dict[str, Any]:
    """Apply a segment map to the segments given (by name): the elements they carry."""
    body: dict[str, Any] = {}
    for rule in smap.rules:
        seg = segments.get(rule.segment)
        if seg is None:
            continue
        value = read_value(ctx, plans, rule, seg)
        if value is not None:
            set_path(body, rule.target, value)
    for dosage in body.get("dosageInstruction", []):
        _dosage_shape(dosage)
    return body


def _dosage_shape(dosage: dict[str, Any]) -> None:
    """The readers' marks → FHIR: dose quantity or range, as-needed timing."""
    for dar in dosage.get("doseAndRate", []):
        dose = dar.pop("dose", None)
        if dose is not None:
            is_range = dose.pop("_range", False)
            dar["doseRange" if is_range else "doseQuantity"] = dose
    timing = dosage.get("timing")
    if isinstance(timing, dict) and timing.pop("_asNeeded", False):
        dosage["asNeededBoolean"] = True


def _add_elements(plan: Plan, body: dict[str, Any]) -> None:
    for name, value in body.items():
        if name == "medication":
            plan.add("medication", "CodeableConcept", value, json="medicationCodeableConcept")
        elif name == "effective":
            kind, inner = next(iter(value.items()))
            json_name = "effectiveDateTime" if kind == "dateTime" else "effectivePeriod"
            plan.add(
                "effective", "dateTime" if kind == "dateTime" else "Period", inner, json=json_name
            )
        elif name == "identifier":
            plan.base.setdefault("identifier", []).extend(value)
        elif name in _ELEMENTS:
            type_, many, _ = _ELEMENTS[name]
            plan.add(name, type_, value, many=many)


def _order_identifier(
    ctx: MappingContext, orc: Segment, n: int, code: str
) -> dict[str, Any] | None:
    c = orc.one(n)
    if not c(1):
        return None
    out: dict[str, Any] = {"type": ctx.codes.concept("0203", code), "value": c(1)}
    system = hd_system(ctx, c(2), c(3), c(4))
    if system:
        out["system"] = system
    return out


def _order_key(
    ctx: MappingContext, group: _Group, patient: Plan, medication: dict[str, Any], when: str
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    idents = []
    if group.orc is not None:
        idents = [
            i
            for i in (
                _order_identifier(ctx, group.orc, 2, _PLACER_TYPE),
                _order_identifier(ctx, group.orc, 3, _FILLER_TYPE),
            )
            if i
        ]
    if idents:
        return {k: idents[0][k] for k in ("system", "value") if k in idents[0]}, idents
    ctx.warnings.append(
        "ORC-2/ORC-3 order numbers empty: the order is keyed on the patient, drug and order time"
    )
    key = derived_identifier("MedicationRequest", patient.key["value"], _code_key(medication), when)
    return key, [key]


def _map_order(
    ctx: MappingContext,
    plans: Plans,
    group: _Group,
    patient: Plan,
    encounter: Plan | None,
    fallback_drug: dict[str, Any] | None,
    user_dir: str | None,
    *,
    ordering: bool,
) -> Plan:
    """The order of a group; ``ordering``: the message is the order itself (RDE), whose visit is
    the ordering encounter."""
    rxe, rxo = group.first("RXE"), group.first("RXO")
    segments: dict[str, Segment | None] = {
        "ORC": group.orc,
        "RXO": rxo,
        "RXE": rxe,
        "TQ1": group.of(rxe, "TQ1") or group.first("TQ1"),
        "RXR": group.of(rxe, "RXR") or group.of(rxo, "RXR"),
    }
    for name, segs in group.segments.items():
        if name.startswith("Z"):
            segments.setdefault(name, segs[0])
    body = _interpret(ctx, plans, segment_map(_ORDER_MAP, user_dir), segments)
    medication = body.pop("medication", None) or fallback_drug
    if medication is None:
        raise RequiredFieldMissing("the order names no drug (RXE-2, RXO-1)", segment="RXE", field=2)
    when = str(body.get("authoredOn") or "")
    key, idents = _order_key(ctx, group, patient, medication, when)
    base: dict[str, Any] = {
        "identifier": idents + body.pop("identifier", []),
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": medication,
        "subject": patient.reference,
    }
    plan = Plan("MedicationRequest", key, base=base)
    if rxe is not None or rxo is not None:
        plan.add("medication", "CodeableConcept", medication, json="medicationCodeableConcept")
    if encounter is not None and ordering:  # a dispense's visit is not the ordering one
        plan.add("encounter", "Reference", encounter.reference)
    _add_elements(plan, body)
    return plans.put(plan)


def _map_event(
    ctx: MappingContext,
    plans: Plans,
    group: _Group,
    seg: Segment,
    order: Plan,
    patient: Plan,
    encounter: Plan | None,
    user_dir: str | None,
) -> Plan:
    segments: dict[str, Segment | None] = {seg.name: seg, "RXR": group.of(seg, "RXR")}
    for name, segs in group.segments.items():
        if name.startswith("Z"):
            segments.setdefault(name, segs[0])
    body = _interpret(ctx, plans, segment_map(_EVENT_MAP[seg.name], user_dir), segments)
    medication = body.pop("medication")
    counters = (seg.value(1), seg.value(2) if seg.name == "RXA" else "", seg.value(3))
    base: dict[str, Any] = {"status": "completed"}
    if seg.name == "RXD":
        res_type = "MedicationDispense"
        base["authorizingPrescription"] = [order.reference]
    else:
        res_type = "MedicationAdministration"
        base["request"] = order.reference
    key = derived_identifier(res_type, patient.key["value"], order.key.get("value", ""), *counters)
    base.update(identifier=[key], medicationCodeableConcept=medication, subject=patient.reference)
    plan = Plan(res_type, key, base=base)
    plan.add("medication", "CodeableConcept", medication, json="medicationCodeableConcept")
    if encounter is not None:
        plan.add("context", "Reference", encounter.reference)
    _add_elements(plan, body)
    return plans.put(plan)


def _patient_and_visit(
    ctx: MappingContext, plans: Plans, head: list[Segment], control_id: str
) -> tuple[Plan, Plan | None]:
    pid = next((s for s in head if s.name == "PID"), None)
    if pid is None:
        raise SegmentSequenceError("a pharmacy message needs a PID segment", segment="PID")
    pd1 = next((s for s in head if s.name == "PD1"), None)
    patient = map_patient(ctx, plans, pid, pd1)
    pv1 = next((s for s in head if s.name == "PV1"), None)
    if pv1 is None or not (pv1.value(19) or pv1.value(44)):
        return patient, None
    # The visit is named, never changed: a stub is created only for a visit not yet known.
    encounter = map_encounter(ctx, plans, pv1, None, patient, EventRule(), control_id)
    encounter.elements = [e for e in encounter.elements if e.name == "subject"]
    return patient, encounter


def map_pharmacy(
    ctx: MappingContext, plans: Plans, msg: Message, message_type: str, user_dir: str | None
) -> tuple[Plan, list[Plan]]:
    """Map a pharmacy message; returns the patient and the resources it is about (its focus)."""
    head, groups = _groups(msg)
    patient, encounter = _patient_and_visit(ctx, plans, head, msg.control_id)
    wanted = _EVENT_SEGMENT.get(message_type)
    if not groups:
        raise SegmentSequenceError(
            f"{message_type} holds no order group (ORC with {wanted or 'RXE'})",
            segment=wanted or "RXE",
        )
    focus: list[Plan] = []
    for number, group in enumerate(groups, start=1):
        focus.extend(_map_group(ctx, plans, group, number, wanted, patient, encounter, user_dir))
    return patient, focus


def _map_group(
    ctx: MappingContext,
    plans: Plans,
    group: _Group,
    number: int,
    wanted: str | None,
    patient: Plan,
    encounter: Plan | None,
    user_dir: str | None,
) -> list[Plan]:
    if wanted is None and group.first("RXE") is None:
        raise SegmentSequenceError(
            f"order group {number} has no RXE segment", segment="RXE", sequence=number
        )
    events = [s for s in group.events if s.name == wanted] if wanted else []
    if wanted and not events:
        raise SegmentSequenceError(
            f"order group {number} has no {wanted} segment", segment=wanted, sequence=number
        )
    fallback = None
    if events:
        fallback = _event_drug(ctx, plans, events[0], user_dir)
    order = _map_order(
        ctx, plans, group, patient, encounter, fallback, user_dir, ordering=wanted is None
    )
    plans_out = [order]
    for seg in events:
        plans_out.append(_map_event(ctx, plans, group, seg, order, patient, encounter, user_dir))
    return plans_out


def _event_drug(
    ctx: MappingContext, plans: Plans, seg: Segment, user_dir: str | None
) -> dict[str, Any] | None:
    """The drug an RXD or RXA names (the order's, when the message carries no RXE or RXO)."""
    smap = segment_map(_EVENT_MAP[seg.name], user_dir)
    rule = next(r for r in smap.rules if r.target == "medication")
    value = read_value(ctx, plans, rule, seg)
    return value if isinstance(value, dict) else None
