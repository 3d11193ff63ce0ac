"""PID (+PD1) → Patient, NK1 → RelatedPerson, MRG → merge links."""

from __future__ import annotations

from typing import Any

from adapters.terminology import normalise_language

from ._datatypes import (
    MappingContext,
    address,
    codeable,
    contact_point,
    human_name,
    identifier,
    xcn,
)
from ._errors import RequiredFieldMissing, TableValueNotFound
from ._parse import Segment
from ._patch import DELETE, Plan, Plans, derived_identifier

__all__ = ["map_patient", "map_related_persons", "map_merge", "patient_key", "practitioner"]

_SSN = "http://hl7.org/fhir/sid/us-ssn"


def _identifiers(ctx: MappingContext, pid: Segment) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n in (3, 2, 4):
        for rep in pid.reps(n):
            ident = identifier(ctx, rep, f"PID-{n}")
            if ident:
                out.append(ident)
    if pid.value(19):
        out.append(
            {"system": _SSN, "value": pid.value(19), "type": ctx.codes.concept("0203", "SS")}
        )
    dl = pid.one(20)
    if dl(1):
        ident = {"value": dl(1), "type": ctx.codes.concept("0203", "DL")}
        if dl(2):
            ident["system"] = f"{ctx.codes.local_base}drivers-license:{dl(2)}"
        out.append(ident)
    return _unique(out)


def _unique(idents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[tuple[str, str]] = set()
    out = []
    for i in idents:
        k = (i.get("system", ""), i["value"])
        if k not in seen:
            seen.add(k)
            out.append(i)
    return out


def patient_key(ctx: MappingContext, pid: Segment, field: int = 3) -> dict[str, Any]:
    """The match key: the MR-typed repeat of PID-3, else its first repeat (then PID-2, PID-4)."""
    for n in (field, 2, 4) if field == 3 else (field,):
        found = [identifier(ctx, r, f"{pid.name}-{n}") for r in pid.reps(n)]
        reps = [r for r in found if r]
        for r in reps:
            if any(c.get("code") == "MR" for c in r.get("type", {}).get("coding", [])):
                return r
        if reps:
            return reps[0]
    raise RequiredFieldMissing(
        "no patient identifier", segment=pid.name, field=field, position=pid.position
    )


def _key_of(ident: dict[str, Any]) -> dict[str, str]:
    return {k: ident[k] for k in ("system", "value") if k in ident}


def _match(ident: dict[str, Any]) -> str:
    if "system" in ident:
        return f"system='{_q(ident['system'])}'"
    return f"system.empty() and value='{_q(ident['value'])}'"


def _q(s: str) -> str:
    return s.replace("\\", "\\\\").replace("'", "\\'")


def map_patient(ctx: MappingContext, plans: Plans, pid: Segment, pd1: Segment | None) -> Plan:
    key = patient_key(ctx, pid)
    plan = Plan("Patient", _key_of(key))
    idents = _identifiers(ctx, pid)
    by_system: dict[str, list[dict[str, Any]]] = {}
    for ident in idents:
        by_system.setdefault(_match(ident), []).append(ident)
    for match, items in by_system.items():
        plan.add("identifier", "Identifier", items, many=True, match=match)
    _names(ctx, plan, pid)
    _simple(ctx, plan, pid)
    _deceased(ctx, plan, pid)
    if pd1 is not None:
        _general_practitioner(ctx, plans, plan, pd1)
    return plans.put(plan)


def _names(ctx: MappingContext, plan: Plan, pid: Segment) -> None:
    if pid.is_null(5):
        plan.add("name", "HumanName", DELETE, many=True)
        return
    names = [n for n in (human_name(ctx, r, "PID-5") for r in pid.reps(5)) if n]
    plan.add("name", "HumanName", names, many=True)


def _simple(ctx: MappingContext, plan: Plan, pid: Segment) -> None:
    """Singletons and lists taken whole: birth date, gender, address, telecom, marital status."""
    if pid.is_null(7):
        plan.add("birthDate", "date", DELETE)
    else:
        plan.add("birthDate", "date", ctx.date(pid.value(7), "PID-7"))
    if pid.is_null(8):
        plan.add("gender", "code", DELETE)
    elif pid.value(8):
        gender = ctx.codes.translate("0001", pid.value(8))
        if gender is None:
            ctx.warnings.append(f"PID-8: sex {pid.value(8)!r} not in table 0001; gender 'unknown'")
        plan.add("gender", "code", gender or "unknown")
    if pid.is_null(11):
        plan.add("address", "Address", DELETE, many=True)
    else:
        addrs = [a for a in (address(ctx, r, "PID-11") for r in pid.reps(11)) if a]
        plan.add("address", "Address", addrs, many=True)
    _telecom(ctx, plan, pid)
    if pid.is_null(16):
        plan.add("maritalStatus", "CodeableConcept", DELETE)
    elif pid.value(16):
        c = pid.one(16)
        plan.add("maritalStatus", "CodeableConcept", ctx.codes.concept("0002", c(1), c(2)))
    _language(ctx, plan, pid)


def _language(ctx: MappingContext, plan: Plan, pid: Segment) -> None:
    """PID-15 → communication: a BCP-47 coding first, the sender's code kept beside it."""
    sent = codeable(ctx, pid.one(15), "0296")
    if not sent:
        return
    lang = normalise_language(sent)
    if lang.tag is None:
        ctx.warn_sender(
            TableValueNotFound(
                f"language {pid.one(15)(1) or sent.get('text', '')!r} is no ISO 639 code or"
                " language name: kept as text",
                segment=pid.name,
                field=15,
                position=pid.position,
            )
        )
    preferred = [{"language": lang.concept, "preferred": True}]
    plan.add("communication", "backbone", preferred, many=True)


def _telecom(ctx: MappingContext, plan: Plan, pid: Segment) -> None:
    if pid.is_null(13) and pid.is_null(14):
        plan.add("telecom", "ContactPoint", DELETE, many=True)
        return
    points = []
    for n, default_use in ((13, "home"), (14, "work")):
        for rep in pid.reps(n):
            cp = contact_point(ctx, rep, f"PID-{n}")
            if cp:
                cp.setdefault("use", default_use)
                points.append(cp)
    plan.add("telecom", "ContactPoint", points, many=True)


def _deceased(ctx: MappingContext, plan: Plan, pid: Segment) -> None:
    when = ctx.dt(pid.value(29), "PID-29")
    flag = pid.value(30)
    if when:
        plan.add("deceased", "dateTime", when, json="deceasedDateTime")
    elif flag in ("Y", "N"):
        plan.add("deceased", "boolean", flag == "Y", json="deceasedBoolean")
    elif pid.is_null(29) or pid.is_null(30):
        plan.add("deceased", "boolean", DELETE)


def practitioner(ctx: MappingContext, plans: Plans, c: Any, where: str) -> dict[str, Any] | None:
    """XCN → a reference to a Practitioner keyed on its id; a bare name stays a display."""
    ident, name = xcn(ctx, c, where)
    if ident is None:
        if name is None:
            return None
        return {"display": " ".join([*name.get("given", []), name.get("family", "")]).strip()}
    plan = Plan("Practitioner", _key_of(ident), base={"identifier": [ident]})
    if name:
        plan.add("name", "HumanName", [name], many=True)
    return plans.put(plan).reference


def _general_practitioner(ctx: MappingContext, plans: Plans, plan: Plan, pd1: Segment) -> None:
    refs = [r for r in (practitioner(ctx, plans, c, "PD1-4") for c in pd1.reps(4)) if r]
    plan.add("generalPractitioner", "Reference", refs, many=True)


def map_related_persons(
    ctx: MappingContext, plans: Plans, patient: Plan, nk1s: list[Segment]
) -> None:
    for nk1 in nk1s:
        names = [n for n in (human_name(ctx, r, "NK1-2") for r in nk1.reps(2)) if n]
        rel = nk1.one(3)
        label = " ".join(f"{n.get('family', '')} {' '.join(n.get('given', []))}" for n in names)
        if not label.strip() and not rel(1):
            ctx.warnings.append(f"NK1 (line {nk1.position}): no name and no relationship; skipped")
            continue
        key = derived_identifier("RelatedPerson", patient.key["value"], label.strip(), rel(1))
        plan = Plan("RelatedPerson", key, base={"identifier": [key], "patient": patient.reference})
        relationship = []
        if rel(1):
            relationship.append(ctx.codes.concept("0063", rel(1), rel(2)))
        role = nk1.one(7)
        if role(1):
            relationship.append(ctx.codes.concept("0131", role(1), role(2)))
        plan.add("relationship", "CodeableConcept", relationship, many=True)
        plan.add("name", "HumanName", names, many=True)
        points = []
        for n, use in ((5, "home"), (6, "work")):
            for rep in nk1.reps(n):
                cp = contact_point(ctx, rep, f"NK1-{n}")
                if cp:
                    cp.setdefault("use", use)
                    points.append(cp)
        plan.add("telecom", "ContactPoint", points, many=True)
        addrs = [a for a in (address(ctx, r, "NK1-4") for r in nk1.reps(4)) if a]
        plan.add("address", "Address", addrs, many=True)
        gender = ctx.codes.translate("0001", nk1.value(15))
        plan.add("gender", "code", gender)
        plan.add("birthDate", "date", ctx.date(nk1.value(16), "NK1-16"))
        plan.add("period", "Period", ctx.period(nk1.value(8), nk1.value(9), "NK1-8", dates=True))
        plans.put(plan)


def map_merge(ctx: MappingContext, plans: Plans, survivor: Plan, mrg: Segment) -> Plan:
    """MRG-1 names the replaced patient: the survivor `replaces` it, it is `replaced-by`."""
    old_key = patient_key(ctx, mrg, 1)
    old = Plan("Patient", _key_of(old_key), base={"identifier": [old_key]})
    new_ident = {k: survivor.key[k] for k in ("system", "value") if k in survivor.key}
    old_ref = {**old.reference, "identifier": _key_of(old_key)}
    new_ref = {**survivor.reference, "identifier": new_ident}
    survivor.add(
        "link",
        "backbone",
        [{"other": old_ref, "type": "replaces"}],
        many=True,
        match=f"other.identifier.value='{_q(old_key['value'])}'",
    )
    old.add("active", "boolean", False)
    old.add(
        "link",
        "backbone",
        [{"other": new_ref, "type": "replaced-by"}],
        many=True,
        match=f"other.identifier.value='{_q(new_ident['value'])}'",
    )
    return plans.put(old)
