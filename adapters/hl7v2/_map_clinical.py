"""DG1 → Condition, AL1/IAM → AllergyIntolerance, PR1 → Procedure, IN1 → Coverage, OBX →
Observation. v2 gives these no business identifier: each gets one derived from what identifies
it (patient, visit, code, time), so a re-sent message finds the same resource."""

from __future__ import annotations

import re
from typing import Any

from ._datatypes import MappingContext, codeable, identifier
from ._errors import DataTypeError, RequiredFieldMissing
from ._parse import Segment
from ._patch import Plan, Plans, derived_identifier

__all__ = ["map_diagnoses", "map_allergies", "map_procedures", "map_coverages", "map_observations"]

_CONDITION_CATEGORY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
            "code": "encounter-diagnosis",
            "display": "Encounter Diagnosis",
        }
    ]
}
_ACTIVE_ALLERGY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
            "code": "active",
        }
    ]
}
_INACTIVE_ALLERGY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
            "code": "inactive",
        }
    ]
}
_MAX_POSITIVE_INT = 2**31 - 1  # FHIR positiveInt
_NUMBER = re.compile(r"\s*([<>]=?|=)?\s*(-?\d+(?:\.\d+)?)\s*\Z")


def _code_key(concept: dict[str, Any] | None) -> str:
    if not concept:
        return ""
    coding = (concept.get("coding") or [{}])[0]
    return (
        f"{coding.get('system', '')}|{coding.get('code', '')}"
        if coding
        else concept.get("text", "")
    )


def _diagnosis_code(ctx: MappingContext, dg1: Segment, sequence: int) -> dict[str, Any] | None:
    """DG1-3 (v2.3: its coding method in DG1-2), else the DG1-4 description as text alone."""
    concept = codeable(ctx, dg1.one(3), default_system=dg1.value(2))
    if concept is None and dg1.value(4):
        concept = {"text": dg1.value(4)}
    if concept is not None and "coding" not in concept:
        ctx.warn_sender(
            RequiredFieldMissing(
                f"diagnosis {concept['text'][:40]!r} has no code: kept as text",
                segment="DG1",
                sequence=sequence,
                field=3,
                component=1,
                position=dg1.position,
            )
        )
    return concept


def map_diagnoses(
    ctx: MappingContext, plans: Plans, dg1s: list[Segment], patient: Plan, encounter: Plan | None
) -> None:
    visit = encounter.key["value"] if encounter else ""
    for sequence, dg1 in enumerate(dg1s, start=1):
        code = _diagnosis_code(ctx, dg1, sequence)
        if code is None:
            ctx.warnings.append(f"DG1 (line {dg1.position}): no diagnosis code; skipped")
            continue
        key = derived_identifier("Condition", patient.key["value"], visit, _code_key(code))
        base = {
            "identifier": [key],
            "category": [_CONDITION_CATEGORY],
            "subject": patient.reference,
        }
        plan = Plan("Condition", key, base=base)
        plan.add("code", "CodeableConcept", code)
        if encounter is not None:
            plan.add("encounter", "Reference", encounter.reference)
        plan.add("onset", "dateTime", ctx.dt(dg1.value(5), "DG1-5"), json="onsetDateTime")
        plan = plans.put(plan)
        if encounter is not None:
            _encounter_diagnosis(ctx, dg1, plan, key, encounter)


def _encounter_diagnosis(
    ctx: MappingContext, dg1: Segment, condition: Plan, key: dict[str, str], encounter: Plan
) -> None:
    item: dict[str, Any] = {"condition": {**condition.reference, "identifier": key}}
    kind = dg1.value(6)
    if kind:
        item["use"] = ctx.codes.concept("0052", kind)
    rank = dg1.value(15)
    if rank.isascii() and rank.isdigit() and int(rank) > 0:
        if int(rank) > _MAX_POSITIVE_INT:
            raise DataTypeError(
                f"DG1-15 priority {rank} is over {_MAX_POSITIVE_INT}", segment="DG1", field=15
            )
        item["rank"] = int(rank)
    match = f"condition.identifier.value='{key['value']}'"
    encounter.add("diagnosis", "backbone", [item], many=True, match=match)


def map_allergies(ctx: MappingContext, plans: Plans, segs: list[Segment], patient: Plan) -> None:
    """AL1 and IAM (A60) share their first five fields' meaning."""
    for seg in segs:
        code = codeable(ctx, seg.one(3))
        if code is None:
            ctx.warnings.append(f"{seg.name} (line {seg.position}): no allergen; skipped")
            continue
        key = derived_identifier("AllergyIntolerance", patient.key["value"], _code_key(code))
        plan = Plan(
            "AllergyIntolerance", key, base={"identifier": [key], "patient": patient.reference}
        )
        plan.add("code", "CodeableConcept", code)
        deleted = seg.name == "IAM" and seg.value(6) == "D"
        plan.add(
            "clinicalStatus", "CodeableConcept", _INACTIVE_ALLERGY if deleted else _ACTIVE_ALLERGY
        )
        category = ctx.codes.translate("0127", seg.value(2))
        if seg.value(2) and not category:
            ctx.warnings.append(
                f"{seg.name}-2: allergen type {seg.value(2)!r} has no FHIR category"
            )
        plan.add("category", "code", [category] if category else None, many=True)
        _reaction(ctx, plan, seg)
        onset = seg.value(6 if seg.name == "AL1" else 11)
        plan.add("onset", "dateTime", ctx.dt(onset, f"{seg.name} onset"), json="onsetDateTime")
        plans.put(plan)


def _reaction(ctx: MappingContext, plan: Plan, seg: Segment) -> None:
    severity_code = seg.value(4)
    severity = ctx.codes.translate("0128", severity_code)
    manifestations = [{"text": r(1) or r(2)} for r in seg.reps(5) if r(1) or r(2)]
    if manifestations:
        reaction: dict[str, Any] = {"manifestation": manifestations}
        if severity:
            reaction["severity"] = severity
        plan.add("reaction", "backbone", [reaction], many=True)
    if severity_code:
        plan.add("criticality", "code", "high" if severity_code == "SV" else "low")


def map_procedures(
    ctx: MappingContext, plans: Plans, pr1s: list[Segment], patient: Plan, encounter: Plan | None
) -> None:
    visit = encounter.key["value"] if encounter else ""
    for pr1 in pr1s:
        code = codeable(ctx, pr1.one(3)) or ({"text": pr1.value(4)} if pr1.value(4) else None)
        if code is None:
            ctx.warnings.append(f"PR1 (line {pr1.position}): no procedure code; skipped")
            continue
        key = derived_identifier(
            "Procedure", patient.key["value"], visit, _code_key(code), pr1.value(5)
        )
        base = {"identifier": [key], "status": "completed", "subject": patient.reference}
        plan = Plan("Procedure", key, base=base)
        plan.add("code", "CodeableConcept", code)
        if encounter is not None:
            plan.add("encounter", "Reference", encounter.reference)
        plan.add("performed", "dateTime", ctx.dt(pr1.value(5), "PR1-5"), json="performedDateTime")
        plans.put(plan)


def _payor(ctx: MappingContext, plans: Plans, in1: Segment) -> dict[str, str] | None:
    ident = identifier(ctx, in1.one(3), "IN1-3")
    name = in1.value(4)
    if ident is None and not name:
        return None
    key: dict[str, str] = (
        {k: ident[k] for k in ("system", "value") if k in ident}
        if ident
        else derived_identifier("Organization", name)
    )
    plan = Plan("Organization", key, base={"identifier": [ident or key]})
    plan.add("name", "string", name or None)
    return plans.put(plan).reference


def map_coverages(ctx: MappingContext, plans: Plans, in1s: list[Segment], patient: Plan) -> None:
    for in1 in in1s:
        plan_id = in1.one(2)
        policy = in1.value(36)
        payor = _payor(ctx, plans, in1)
        if not (plan_id(1) or policy or payor):
            ctx.warnings.append(f"IN1 (line {in1.position}): no plan, policy or company; skipped")
            continue
        company = in1.value(3) or in1.value(4)
        key = derived_identifier("Coverage", patient.key["value"], company, plan_id(1), policy)
        identifiers = [key] + ([{"value": policy}] if policy else [])
        base = {
            "identifier": identifiers,
            "status": "active",
            "beneficiary": patient.reference,
            "payor": [payor or patient.reference],
        }
        plan = Plan("Coverage", key, base=base)
        if plan_id(1):
            klass = {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                            "code": "plan",
                        }
                    ]
                },
                "value": plan_id(1),
            }
            if plan_id(2):
                klass["name"] = plan_id(2)
            plan.add("class", "backbone", [klass], many=True)
        plan.add("period", "Period", ctx.period(in1.value(12), in1.value(13), "IN1-12", dates=True))
        plans.put(plan)


def map_observations(
    ctx: MappingContext, plans: Plans, obxs: list[Segment], patient: Plan, encounter: Plan | None
) -> None:
    visit = encounter.key["value"] if encounter else ""
    for obx in obxs:
        code = codeable(ctx, obx.one(3))
        if code is None:
            ctx.warnings.append(f"OBX (line {obx.position}): no observation code; skipped")
            continue
        key = derived_identifier(
            "Observation", patient.key["value"], visit, _code_key(code), obx.value(4), obx.value(14)
        )
        status = ctx.codes.translate("0085", obx.value(11)) or "unknown"
        base = {"identifier": [key], "status": status, "code": code, "subject": patient.reference}
        plan = Plan("Observation", key, base=base)
        plan.add("status", "code", status if obx.value(11) else None)
        if encounter is not None:
            plan.add("encounter", "Reference", encounter.reference)
        _observation_value(ctx, plan, obx)
        plan.add("effective", "dateTime", ctx.dt(obx.value(14), "OBX-14"), json="effectiveDateTime")
        interp = [i for i in (codeable(ctx, r, "0078") for r in obx.reps(8)) if i]
        plan.add("interpretation", "CodeableConcept", interp, many=True)
        if obx.value(7):
            plan.add("referenceRange", "backbone", [{"text": obx.value(7)}], many=True)
        plans.put(plan)


def _observation_value(ctx: MappingContext, plan: Plan, obx: Segment) -> None:
    kind = obx.value(2)
    reps = obx.reps(5)
    if not reps:
        return
    if kind in ("NM", "SN"):
        raw = reps[0](1) + (reps[0](2) if kind == "SN" else "")
        m = _NUMBER.match(raw)
        if m:
            qty: dict[str, Any] = {
                "value": float(m.group(2)) if "." in m.group(2) else int(m.group(2))
            }
            if m.group(1) in ("<", "<=", ">", ">="):
                qty["comparator"] = m.group(1)
            unit = obx.one(6)
            if unit(1):
                qty["unit"] = unit(2) or unit(1)
                if unit(3) in ("UCUM", "ISO+", "ANS+") or not unit(3):
                    qty["system"], qty["code"] = "http://unitsofmeasure.org", unit(1)
            if len(reps) > 1:
                ctx.warnings.append(
                    f"OBX-5 (line {obx.position}): only the first of {len(reps)} values kept"
                )
            plan.add("value", "Quantity", qty, json="valueQuantity")
            return
    if kind in ("CE", "CWE", "CNE", "CF"):
        concept = codeable(ctx, reps[0])
        plan.add("value", "CodeableConcept", concept, json="valueCodeableConcept")
        return
    if kind in ("DT", "DTM", "TS"):
        plan.add("value", "dateTime", ctx.dt(reps[0](1), "OBX-5"), json="valueDateTime")
        return
    text = "\n".join(obx.d.unescape(r) for r in obx[5].split(obx.d.repetition) if r)
    plan.add("value", "string", text.strip() or None, json="valueString")
