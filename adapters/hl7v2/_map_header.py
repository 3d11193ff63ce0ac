"""MSH → sending Organization, MessageHeader and a Provenance of the source (both PUT with ids
derived from sender and MSH-10, so a re-sent message rewrites them unchanged)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ._datatypes import MappingContext, abdm_checked, hd_system
from ._parse import Segment
from ._patch import Plan, Plans, uuid_for

__all__ = ["map_sender", "message_header", "provenance", "endpoint"]

_V2_0003 = "http://terminology.hl7.org/CodeSystem/v2-0003"


def endpoint(ctx: MappingContext, seg: Segment, n: int, kind: str) -> str:
    """An HD (MSH-3/5) as a URI: its universal id when it has one, else a local URN."""
    c = seg.one(n)
    if c(2):
        system = hd_system(ctx, "", c(2), c(3))
        if system:
            return system
    name = c(1) or "unknown"
    return f"{ctx.codes.local_base}{kind}:{quote(name, safe='')}"


def map_sender(ctx: MappingContext, plans: Plans, msh: Segment) -> Plan | None:
    """MSH-4 → Organization keyed on the facility's universal id or namespace."""
    c = msh.one(4)
    if not (c(1) or c(2)):
        return None
    if c(2):
        key = {"system": "urn:ietf:rfc:3986", "value": hd_system(ctx, "", c(2), c(3)) or c(2)}
    else:
        key = {"system": f"{ctx.codes.local_base}facility", "value": c(1)}
    plan = Plan("Organization", key, base={"identifier": [key]})
    plan.add("name", "string", c(1) or c(2))
    _registry_id(ctx, plan, c(2), c(3))
    return plans.put(plan)


def _registry_id(ctx: MappingContext, plan: Plan, universal: str, kind: str) -> None:
    """An Indian facility's Health Facility Registry id, sent as MSH-4's universal id with an HFR
    authority as its type (``BMHI^IN2910000167^HFR``): an identifier under the HFR system."""
    if not universal or ctx.abdm is None or ctx.abdm_kind(kind) != "hfr":
        return
    value, system = abdm_checked(ctx, universal, None, (kind, ""), "MSH-4")
    if system == ctx.abdm.hfr:
        ident = {"system": system, "value": value}
        plan.add("identifier", "Identifier", [ident], many=True, match=f"system='{system}'")


def _put(resource: dict[str, Any]) -> dict[str, Any]:
    rid = resource["id"]
    return {
        "fullUrl": f"urn:uuid:{rid}",
        "resource": resource,
        "request": {"method": "PUT", "url": f"{resource['resourceType']}/{rid}"},
    }


def message_header(
    ctx: MappingContext,
    msh: Segment,
    event: str,
    sender: Plan | None,
    focus: list[Plan],
    message_key: tuple[str, ...],
) -> dict[str, Any]:
    header: dict[str, Any] = {
        "resourceType": "MessageHeader",
        "id": uuid_for("MessageHeader", *message_key),
        "eventCoding": {"system": _V2_0003, "code": event},
        "source": {"endpoint": endpoint(ctx, msh, 3, "application")},
    }
    if msh.value(3):
        header["source"]["name"] = msh.value(3)
    if msh.value(5) or msh.value(6):
        dest: dict[str, Any] = {"endpoint": endpoint(ctx, msh, 5, "application")}
        if msh.value(5):
            dest["name"] = msh.value(5)
        header["destination"] = [dest]
    if sender is not None:
        header["sender"] = sender.reference
    if focus:
        header["focus"] = [p.reference for p in focus]
    return _put(header)


def provenance(
    ctx: MappingContext,
    msh: Segment,
    evn: Segment | None,
    sender: Plan | None,
    targets: list[str],
    header_url: str,
    recorded: str,
    message_key: tuple[str, ...],
) -> dict[str, Any]:
    who = sender.reference if sender is not None else {"display": msh.value(3) or "unknown sender"}
    prov: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": uuid_for("Provenance", *message_key),
        "target": [{"reference": t} for t in targets],
        "recorded": recorded,
        "activity": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                    "code": "UPDATE",
                }
            ]
        },
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "author",
                        }
                    ]
                },
                "who": who,
            }
        ],
        "entity": [
            {
                "role": "source",
                "what": {
                    "reference": header_url,
                    "identifier": {
                        "system": endpoint(ctx, msh, 3, "application"),
                        "value": msh.value(10),
                    },
                    "display": f"HL7 v2 message {msh.value(10)}",
                },
            }
        ],
    }
    if evn is not None:
        occurred = ctx.dt(evn.value(6) or evn.value(2), "EVN-2")
        if occurred:
            prov["occurredDateTime"] = occurred
    return _put(prov)
