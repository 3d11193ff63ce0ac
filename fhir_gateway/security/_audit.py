"""The audit trail's events: one AuditEvent (IHE Basic Audit Log Patterns) per request and token.

Each event says who (the client, its organisation, its network address), what (the interaction
and the resource or query), which patient (when the request names one: ``Patient/id``, or a
``patient``/``subject`` parameter) and the outcome (0 success, 4 refused or invalid, 8 failed).

The trail is stored as compact rows (``_audit_rows``, written by ``_auditor``); these builders
make the AuditEvent a row reads as, so admins search them as FHIR: ``AuditEvent?patient=…``,
``?altid=client``, ``?date=ge…``, ``?outcome=4`` (``_audit_search``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from fhir_gateway import clock
from fhir_gateway.context import Caller

__all__ = ["Interaction", "interaction_of", "patient_of", "request_event", "token_event"]

_BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/"
_REST = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
_LOGIN = {
    "system": "http://dicom.nema.org/resources/ontology/DCM",
    "code": "110114",
    "display": "User Authentication",
}
_INTERACTION = "http://hl7.org/fhir/restful-interaction"
_CLIENT_ID = "urn:ietf:params:oauth:client-id"
_PATIENT_PARAMS = ("patient", "subject", "for", "beneficiary")


@dataclass(frozen=True, slots=True)
class Interaction:
    code: str  # restful-interaction code (read, search-type, create, …) or an operation name
    action: str  # C R U D E
    target: str | None  # Type/id or Type, when the path names one
    profile: str


_PROFILES = {
    "C": "IHE.BasicAudit.Create",
    "R": "IHE.BasicAudit.Read",
    "U": "IHE.BasicAudit.Update",
    "D": "IHE.BasicAudit.Delete",
    "E": "IHE.BasicAudit.Query",
}


def interaction_of(method: str, path: str) -> Interaction:
    """Which FHIR interaction a request is, from its method and path alone (no parsing of bodies)."""
    parts = [p for p in path.split("/") if p]
    n = len(parts)
    if n == 0:
        code, action = ("transaction", "E") if method == "POST" else ("search-system", "E")
    elif parts[0].startswith("$") or parts[0] in ("hl7v2", "inbox"):
        code, action = ((parts[0].lstrip("$") or "operation"), "C" if method == "POST" else "R")
    elif parts[0] == "_history":
        code, action = "history-system", "R"
    elif n == 1:
        code, action = {
            "GET": ("search-type", "E"),
            "POST": ("create", "C"),
            "PUT": ("update", "U"),
            "PATCH": ("patch", "U"),
            "DELETE": ("delete", "D"),
        }.get(method, (method.lower(), "E"))
    elif parts[1] == "_search":
        code, action = "search-type", "E"
    elif parts[1] == "_history":
        code, action = "history-type", "R"
    elif n >= 3 and parts[2] == "_history":
        code, action = ("vread", "R") if n >= 4 else ("history-instance", "R")
    else:
        code, action = {
            "GET": ("read", "R"),
            "PUT": ("update", "U"),
            "PATCH": ("patch", "U"),
            "DELETE": ("delete", "D"),
        }.get(method, (method.lower(), "E"))
    target = "/".join(parts[:2]) if n >= 1 and not parts[0].startswith(("$", "_")) else None
    return Interaction(code, action, target, _BALP + _PROFILES[action])


def patient_of(target: str | None, query: str) -> str | None:
    if target and target.startswith("Patient/"):
        return target
    for name, value in parse_qsl(query):
        if name.split(":")[0] in _PATIENT_PARAMS and value:
            ref = value.split("/")[-2:] if "/" in value else ["Patient", value]
            if ref[0] == "Patient":
                return f"Patient/{ref[1]}"
    return None


def _outcome(status: int) -> str:
    return "0" if status < 400 else "4" if status < 500 else "8"


def _agents(
    caller: Caller | None, claimed: str | None, address: str | None
) -> list[dict[str, Any]]:
    client_id = caller.client_id if caller is not None else claimed
    who: dict[str, Any] = {"display": client_id or "unauthenticated"}
    if client_id:
        who["identifier"] = {"system": _CLIENT_ID, "value": client_id}
    agent: dict[str, Any] = {
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                    "code": "IRCP",
                }
            ]
        },
        "who": who,
        "requestor": True,
    }
    if client_id:
        agent["altId"] = client_id
    if caller is not None:
        agent["role"] = [{"text": caller.role}]
    if address:
        agent["network"] = {"address": address, "type": "2"}
    agents = [agent]
    if caller is not None and caller.organization:
        agents.append({"who": {"reference": caller.organization}, "requestor": False})
    return agents


def _event(
    kind: dict[str, str],
    subtype: str,
    action: str,
    profile: str,
    status: int,
    recorded: datetime | None = None,
) -> dict[str, Any]:
    return {
        "resourceType": "AuditEvent",
        "meta": {"profile": [profile]},
        "type": dict(kind),
        "subtype": [{"system": _INTERACTION, "code": subtype}],
        "action": action,
        "recorded": clock.to_instant(recorded or clock.now()),
        "outcome": _outcome(status),
        "outcomeDesc": str(status),
        "source": {
            "observer": {"display": "fhir-gateway"},
            "type": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "4",
                }
            ],
        },
    }


def request_event(
    *,
    method: str,
    path: str,
    query: str,
    status: int,
    caller: Caller | None,
    address: str | None,
    recorded: datetime | None = None,
) -> dict[str, Any]:
    what = interaction_of(method, path)
    event = _event(_REST, what.code, what.action, what.profile, status, recorded)
    event["agent"] = _agents(caller, None, address)
    entities: list[dict[str, Any]] = []
    patient = patient_of(what.target, query)
    if patient:
        entities.append(
            {
                "what": {"reference": patient},
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "1",
                },
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "1",
                },
            }
        )
    if what.target and what.target != patient and "/" in what.target:
        entities.append(
            {
                "what": {"reference": what.target},
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "2",
                },
            }
        )
    if query or what.action == "E":
        # A query as text, never base64 of secrets: tokens travel in headers, not in URLs.
        entities.append(
            {
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "2",
                },
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "24",
                },
                "description": f"{method} {path}" + (f"?{query}" if query else ""),
            }
        )
    if entities:
        event["entity"] = entities
    return event


def token_event(
    *,
    client_id: str | None,
    caller: Caller | None,
    status: int,
    address: str | None,
    recorded: datetime | None = None,
) -> dict[str, Any]:
    event = _event(
        _LOGIN, "token", "E", _BALP + "IHE.BasicAudit.SAMLaccessTokenUse.Minimal", status, recorded
    )
    event["subtype"] = [
        {
            "system": "http://fhir-gateway.org/fhir/CodeSystem/audit-subtype",
            "code": "token-issued" if status < 400 else "token-refused",
        }
    ]
    event["agent"] = _agents(caller, client_id, address)
    return event
