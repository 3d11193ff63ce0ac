"""PV1/PV2 → Encounter (with Location and Practitioner participants)."""

from __future__ import annotations

from typing import Any

from ._datatypes import MappingContext, codeable, identifier
from ._events import EventRule
from ._map_patient import practitioner
from ._parse import Segment
from ._patch import DELETE, Plan, Plans, derived_identifier

__all__ = ["map_encounter"]

_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_PARTICIPANTS = (
    (7, "ATND", "attender"),
    (8, "REF", "referrer"),
    (9, "CON", "consultant"),
    (17, "ADM", "admitter"),
)
_UNKNOWN_CLASS = {"system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "code": "UNK"}


def _visit_key(ctx: MappingContext, pv1: Segment, patient: Plan, control_id: str) -> dict[str, Any]:
    visit = identifier(ctx, pv1.one(19), "PV1-19", type_code="VN")
    if visit:
        visit["type"] = ctx.codes.concept("0203", "VN")  # PV1-19 is the visit number
        return visit
    admit = pv1.value(44)
    basis = admit or control_id
    ctx.warnings.append(
        "PV1-19 visit number empty: Encounter keyed on the patient and "
        + ("PV1-44 admit time" if admit else "MSH-10 (a later message cannot update it)")
    )
    return derived_identifier("Encounter", patient.key["value"], basis)


def map_encounter(
    ctx: MappingContext,
    plans: Plans,
    pv1: Segment,
    pv2: Segment | None,
    patient: Plan,
    rule: EventRule,
    control_id: str,
) -> Plan:
    key = _visit_key(ctx, pv1, patient, control_id)
    ident: dict[str, str] = {k: key[k] for k in ("system", "value") if k in key}
    base = {
        "identifier": [key],
        "status": rule.status or "unknown",
        "class": _UNKNOWN_CLASS,
    }
    plan = Plan("Encounter", ident, base=base)
    plan.add("subject", "Reference", patient.reference)
    if rule.status:
        plan.add("status", "code", rule.status)
    _class_and_type(ctx, plan, pv1)
    _period(ctx, plan, pv1, rule)
    _hospitalization(ctx, plan, pv1, rule)
    _participants(ctx, plans, plan, pv1)
    _locations(ctx, plans, plan, pv1, rule)
    if pv2 is not None:
        reason = codeable(ctx, pv2.one(3))
        if reason:
            plan.add("reasonCode", "CodeableConcept", [reason], many=True)
    return plans.put(plan)


def _class_and_type(ctx: MappingContext, plan: Plan, pv1: Segment) -> None:
    code = pv1.value(2)
    if code:
        cls = ctx.codes.coding("0004", code) or ctx.codes.v2_coding("0004", code)
        if cls["system"].endswith("v2-0004") and not ctx.codes.translate("0004", code):
            ctx.warnings.append(f"PV1-2: patient class {code!r} kept as a v2 code")
        plan.add("class", "Coding", {k: cls[k] for k in ("system", "code")})
    if pv1.is_null(4):
        plan.add("type", "CodeableConcept", DELETE, many=True)
    elif pv1.value(4):
        c = pv1.one(4)
        plan.add("type", "CodeableConcept", [ctx.codes.concept("0007", c(1), c(2))], many=True)
    service = codeable(ctx, pv1.one(10), "0069")
    if service:
        plan.add("serviceType", "CodeableConcept", service)


def _period(ctx: MappingContext, plan: Plan, pv1: Segment, rule: EventRule) -> None:
    for n, child in ((44, "start"), (45, "end")):
        if pv1.is_null(n) or (child == "end" and rule.undo_discharge):
            plan.add(child, "dateTime", DELETE, parent="period", parent_type="Period")
            continue
        value = ctx.dt(pv1.value(n), f"PV1-{n}")
        plan.add(child, "dateTime", value, parent="period", parent_type="Period")


def _hospitalization(ctx: MappingContext, plan: Plan, pv1: Segment, rule: EventRule) -> None:
    def child(name: str, value: Any) -> None:
        plan.add(name, "CodeableConcept", value, parent="hospitalization")

    if rule.undo_discharge or pv1.is_null(36):
        plan.add("dischargeDisposition", "CodeableConcept", DELETE, parent="hospitalization")
    elif pv1.value(36):
        c = pv1.one(36)
        child("dischargeDisposition", ctx.codes.concept("0112", c(1), c(2)))
    if pv1.value(14):
        child("admitSource", codeable(ctx, pv1.one(14), "0023"))
    if pv1.value(13):
        child("reAdmission", codeable(ctx, pv1.one(13), "0092"))


def _participants(ctx: MappingContext, plans: Plans, plan: Plan, pv1: Segment) -> None:
    for n, code, display in _PARTICIPANTS:
        kind = {"coding": [{"system": _PARTICIPATION, "code": code, "display": display}]}
        match = f"type.coding.code='{code}'"
        if pv1.is_null(n):
            plan.add("participant", "backbone", DELETE, many=True, match=match)
            continue
        items = []
        for rep in pv1.reps(n):
            ref = practitioner(ctx, plans, rep, f"PV1-{n}")
            if ref:
                items.append({"type": [kind], "individual": ref})
        plan.add("participant", "backbone", items, many=True, match=match)


def _location(ctx: MappingContext, plans: Plans, pv1: Segment, n: int) -> dict[str, Any] | None:
    """PL → a Location keyed on facility/point of care/room/bed; named after them."""
    c = pv1.one(n)
    levels = [c(4), c(1), c(2), c(3)]  # facility, point of care, room, bed
    if not any(levels):
        return None
    key = derived_identifier("Location", *levels)
    name = " ".join(p for p in (c(1), c(2), c(3)) if p) or c(4)
    plan = Plan("Location", key, base={"identifier": [key]})
    plan.add("name", "string", name)
    kind = "bd" if c(3) else "ro" if c(2) else "wa" if c(1) else "si"
    plan.add(
        "physicalType",
        "CodeableConcept",
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
                    "code": kind,
                }
            ]
        },
    )
    if c(4):
        plan.add("description", "string", f"{name} at {c(4)}" if c(1) else c(4))
    ref = plans.put(plan).reference
    return {**ref, "identifier": key}


def _locations(
    ctx: MappingContext, plans: Plans, plan: Plan, pv1: Segment, rule: EventRule
) -> None:
    prior = _location(ctx, plans, pv1, 6)
    if prior is not None:
        match = f"location.identifier.value='{prior['identifier']['value']}'"
        if rule.undo_transfer:
            plan.add("location", "backbone", DELETE, many=True, match=match)
        else:
            item = {"location": prior, "status": "completed"}
            plan.add("location", "backbone", [item], many=True, match=match)
    current = _location(ctx, plans, pv1, 3)
    if current is not None:
        value = current["identifier"]["value"]
        status = "completed" if rule.discharge else "active"
        match = f"status='active' or location.identifier.value='{value}'"
        plan.add(
            "location",
            "backbone",
            [{"location": current, "status": status}],
            many=True,
            match=match,
        )
