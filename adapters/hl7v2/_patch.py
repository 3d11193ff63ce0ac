"""Resource plans → an idempotent POST (ifNoneExist) and a conditional FHIRPath Patch.

A mapper describes a resource as the elements the message carried (:class:`Element`). From that
one description come the full resource for the create and the patch that sets only those
elements, so a re-sent message changes nothing and a sparse one erases nothing it did not carry.

Patch recipes (only ops the gateway's processor supports):

- singleton: ``delete T.x`` then ``add T x value``;
- repeating: ``delete T.x`` (or ``T.x.where(<match>)`` to keep items from other sources), then
  ``add`` each item;
- child of an optional parent (``Encounter.period.end``): ``delete T.p.c``, then
  ``add T.where(p.empty()) p {c}`` and ``add T.p.where(c.empty()) c value``; exactly one of the
  two adds selects an element, the other selects none and does nothing (as in HAPI);
- HL7 ``""``: the delete alone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

__all__ = ["DELETE", "Element", "Plan", "Plans", "derived_identifier", "uuid_for", "RFC3986"]

DELETE: Any = object()  # HL7 "" — remove the element
RFC3986 = "urn:ietf:rfc:3986"
_NS = uuid.UUID("6f1d3c5e-5d0a-4c1e-9a77-2b9a1f3e8c41")  # namespace of this adapter's uuid5s

# Child types of backbone elements the mappers patch (FHIRPath Patch sends them as parts).
_BACKBONE: dict[str, dict[str, str]] = {
    "Patient.contact": {
        "relationship": "CodeableConcept",
        "name": "HumanName",
        "telecom": "ContactPoint",
        "address": "Address",
        "gender": "code",
        "period": "Period",
    },
    "Patient.communication": {"language": "CodeableConcept", "preferred": "boolean"},
    "Patient.link": {"other": "Reference", "type": "code"},
    "Encounter.participant": {
        "type": "CodeableConcept",
        "period": "Period",
        "individual": "Reference",
    },
    "Encounter.diagnosis": {
        "condition": "Reference",
        "use": "CodeableConcept",
        "rank": "positiveInt",
    },
    "Encounter.location": {"location": "Reference", "status": "code", "period": "Period"},
    "Encounter.hospitalization": {
        "preAdmissionIdentifier": "Identifier",
        "admitSource": "CodeableConcept",
        "reAdmission": "CodeableConcept",
        "dischargeDisposition": "CodeableConcept",
        "dietPreference": "CodeableConcept",
    },
    "AllergyIntolerance.reaction": {
        "manifestation": "CodeableConcept",
        "severity": "code",
        "description": "string",
        "onset": "dateTime",
    },
    "Observation.referenceRange": {"text": "string"},
    "Coverage.class": {"type": "CodeableConcept", "value": "string", "name": "string"},
    "MedicationRequest.dispenseRequest": {
        "quantity": "Quantity",
        "expectedSupplyDuration": "Duration",
        "numberOfRepeatsAllowed": "unsignedInt",
        "validityPeriod": "Period",
    },
    "MedicationDispense.performer": {"function": "CodeableConcept", "actor": "Reference"},
    "MedicationAdministration.performer": {"function": "CodeableConcept", "actor": "Reference"},
    "MedicationAdministration.dosage": {
        "text": "string",
        "site": "CodeableConcept",
        "route": "CodeableConcept",
        "method": "CodeableConcept",
        "dose": "Quantity",
        "rateQuantity": "Quantity",
    },
}


def uuid_for(*parts: str) -> str:
    """A deterministic uuid from business keys: a re-sent message gets the same fullUrls."""
    return str(uuid.uuid5(_NS, "\x1f".join(parts)))


def derived_identifier(resource_type: str, *keys: str) -> dict[str, str]:
    """An identifier for resources v2 gives no business key (derived from what identifies them)."""
    return {"system": RFC3986, "value": f"urn:uuid:{uuid_for(resource_type, *keys)}"}


@dataclass(slots=True)
class Element:
    """One element the message carried: ``value`` (a list when ``many``) or :data:`DELETE`.

    ``json`` is the JSON property when it differs from the FHIRPath name (choice types:
    ``deceased`` / ``deceasedDateTime``). ``parent`` names an optional complex parent.
    ``match`` restricts what a repeating element replaces (FHIRPath criteria).
    """

    name: str
    type: str
    value: Any
    many: bool = False
    match: str | None = None
    json: str | None = None
    parent: str | None = None
    parent_type: str | None = None


@dataclass(slots=True)
class Plan:
    """A resource keyed on one identifier: the create body and the elements to patch."""

    type: str
    key: dict[str, str]  # the identifier searched on (system, value)
    base: dict[str, Any] = field(default_factory=dict)  # body only (identifier, required fields)
    elements: list[Element] = field(default_factory=list)
    full_url: str = ""

    def __post_init__(self) -> None:
        if not self.full_url:
            self.full_url = "urn:uuid:" + uuid_for(
                self.type, self.key.get("system", ""), self.key["value"]
            )

    @property
    def reference(self) -> dict[str, str]:
        return {"reference": self.full_url}

    @property
    def search(self) -> str:
        # `|value` is FHIR's "no system": a bare value would also match the same value under
        # any other system (an insurer "1" would find the facility "1").
        token = f"{self.key.get('system') or ''}|{self.key['value']}"
        return "identifier=" + quote(token, safe="|:/.-_~")

    def add(self, name: str, type_: str, value: Any, **kw: Any) -> None:
        if value is None or value == [] or value == {}:
            return
        self.elements.append(Element(name, type_, value, **kw))

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"resourceType": self.type, **self.base}
        for e in self.elements:
            if e.value is DELETE:
                continue
            key = e.json or e.name
            target = out.setdefault(e.parent, {}) if e.parent else out
            if e.many:
                target.setdefault(key, []).extend(e.value)
            else:
                target[key] = e.value
        return out

    def operations(self) -> list[dict[str, Any]]:
        ops: list[dict[str, Any]] = []
        t = self.type
        for e in self.elements:
            if e.parent:
                ops.extend(_child_ops(t, e))
                continue
            path = f"{t}.{e.name}" + (f".where({e.match})" if e.match else "")
            ops.append(_op("delete", path))
            if e.value is DELETE:
                continue
            for item in e.value if e.many else [e.value]:
                ops.append(_op("add", t, e.name, _value(f"{t}.{e.name}", e.type, item)))
        return ops

    def entries(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The POST (create if absent) and the PATCH (set what the message carried)."""
        post = {
            "fullUrl": self.full_url,
            "resource": self.body(),
            "request": {"method": "POST", "url": self.type, "ifNoneExist": self.search},
        }
        patch = {
            "resource": {"resourceType": "Parameters", "parameter": self.operations()},
            "request": {"method": "PATCH", "url": f"{self.type}?{self.search}"},
        }
        return post, patch


def _child_ops(t: str, e: Element) -> list[dict[str, Any]]:
    p, c = e.parent, e.name
    ops = [_op("delete", f"{t}.{p}.{c}")]
    if e.value is DELETE:
        return ops
    parent_type = e.parent_type or "backbone"
    if parent_type == "backbone":
        wrapper = _value(f"{t}.{p}", "backbone", {c: e.value})
    else:
        wrapper = _value(f"{t}.{p}", parent_type, {c: e.value})
    ops.append(_op("add", f"{t}.where({p}.empty())", p, wrapper))
    ops.append(
        _op("add", f"{t}.{p}.where({c}.empty())", c, _value(f"{t}.{p}.{c}", e.type, e.value))
    )
    return ops


def _op(
    kind: str, path: str, name: str | None = None, value: dict[str, Any] | None = None
) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"name": "type", "valueCode": kind},
        {"name": "path", "valueString": path},
    ]
    if name is not None:
        parts.append({"name": "name", "valueString": name})
    if value is not None:
        parts.append(value)
    return {"name": "operation", "part": parts}


def _value(path: str, type_: str, value: Any) -> dict[str, Any]:
    """The ``value`` part: ``value[x]`` for data types, nested parts for backbone elements."""
    children = _BACKBONE.get(path)
    if children is None and type_ != "backbone":
        return {"name": "value", f"value{type_[0].upper()}{type_[1:]}": value}
    parts = []
    for child, v in value.items():
        child_type = (children or {}).get(child, "string")
        for item in v if isinstance(v, list) else [v]:
            part = _value(f"{path}.{child}", child_type, item)
            part["name"] = child
            parts.append(part)
    return {"name": "value", "part": parts}


class Plans:
    """The resources of one message in creation order; one plan per business key."""

    __slots__ = ("_by_url",)

    def __init__(self) -> None:
        self._by_url: dict[str, Plan] = {}

    def put(self, plan: Plan) -> Plan:
        """Keep the first plan for a key: a practitioner named twice is one resource."""
        return self._by_url.setdefault(plan.full_url, plan)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_url.values())

    def __len__(self) -> int:
        return len(self._by_url)
