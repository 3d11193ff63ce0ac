"""The CapabilityStatement, generated from what is really served: the resource types, the routes
the app has mounted, and the search parameters in the registry. Nothing here is kept by hand."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from fhir_gateway import __version__, clock
from fhir_gateway.fhir.types import RESOURCE_TYPES
from fhir_gateway.search.registry import get_registry
from fhir_gateway.security import AUDIT_SEARCH_PARAMS

__all__ = ["capability_statement", "served_interactions"]

# (path template, method) → FHIR interaction code
_TYPE_ROUTES = {
    ("/{res_type}/{res_id}", "GET"): "read",
    ("/{res_type}/{res_id}/_history/{version}", "GET"): "vread",
    ("/{res_type}/{res_id}", "PUT"): "update",
    ("/{res_type}/{res_id}", "PATCH"): "patch",
    ("/{res_type}/{res_id}", "DELETE"): "delete",
    ("/{res_type}/{res_id}/_history", "GET"): "history-instance",
    ("/{res_type}/_history", "GET"): "history-type",
    ("/{res_type}", "POST"): "create",
    ("/{res_type}", "GET"): "search-type",
}
_SYSTEM_ROUTES = {
    ("/", "POST"): ("transaction", "batch"),
    ("/_history", "GET"): ("history-system",),
    ("/", "GET"): ("search-system",),
}


# Operations this server defines through routes: name → the official OperationDefinition.
_OPERATION_DEFINITIONS = {
    "process-message": "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message",
    "apply": "http://hl7.org/fhir/OperationDefinition/PlanDefinition-apply",
}


def served_operations(mounted: set[tuple[str, str]]) -> tuple[list[str], dict[str, list[str]]]:
    """Operations from the mounted ``$`` routes: system-level names, and names per type."""
    system: set[str] = set()
    per_type: dict[str, set[str]] = {}
    for path, _ in mounted:
        parts = path.strip("/").split("/")
        if not parts[-1].startswith("$"):
            continue
        name = parts[-1][1:]
        if len(parts) == 1:
            system.add(name)
        else:
            per_type.setdefault(parts[0], set()).add(name)
    return sorted(system), {t: sorted(names) for t, names in per_type.items()}


def _operation(name: str) -> dict[str, str]:
    return {
        "name": name,
        "definition": _OPERATION_DEFINITIONS.get(name, f"urn:fhir-gateway:operation:{name}"),
    }


def served_interactions(app: FastAPI) -> tuple[list[str], list[str], set[tuple[str, str]]]:
    routes = [r for router in app.state.fhir_routers for r in router.routes]
    mounted = {(r.path, m) for r in routes if isinstance(r, APIRoute) for m in r.methods or ()}
    type_level = [code for key, code in _TYPE_ROUTES.items() if key in mounted]
    system = [code for key, codes in _SYSTEM_ROUTES.items() if key in mounted for code in codes]
    return type_level, system, mounted


# AuditEvent is answered from the audit trail's rows (``security.search_audit_events``): a row is
# read and searched, an admin may create one (it joins the trail); there is no history of a row,
# no update or delete, and the trail search takes no _include or _revinclude.
_AUDIT_INTERACTIONS = ("read", "search-type", "create")


def _audit_entry(interactions: list[str]) -> dict[str, Any]:
    registry = {p.code: p for p in get_registry().params_for("AuditEvent")}
    params = []
    for name, kind in sorted(AUDIT_SEARCH_PARAMS.items()):
        found = registry.get(name)
        definition = {"definition": found.url} if found and found.url else {}
        params.append({"name": name, **definition, "type": kind})
    return {
        "type": "AuditEvent",
        "interaction": [{"code": c} for c in interactions if c in _AUDIT_INTERACTIONS],
        "versioning": "no-version",
        "readHistory": False,
        "updateCreate": False,
        "conditionalCreate": False,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchParam": params,
    }


def _resource_entry(
    res_type: str, interactions: list[str], mounted: set[tuple[str, str]], operations: list[str]
) -> dict[str, Any]:
    if res_type == "AuditEvent":
        return _audit_entry(interactions)
    registry = get_registry()
    params = registry.params_for(res_type)
    references = [p for p in params if p.type == "reference"]
    # The trail is not among the resources a search reaches: no _revinclude of AuditEvents.
    revincludes = [r for r in registry.revincludes_for(res_type) if not r.startswith("AuditEvent:")]
    return {
        "type": res_type,
        "interaction": [{"code": code} for code in interactions],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalRead": "not-supported",
        "conditionalUpdate": ("/{res_type}", "PUT") in mounted,
        "conditionalDelete": "single" if ("/{res_type}", "DELETE") in mounted else "not-supported",
        "searchInclude": ["*"] + sorted(f"{res_type}:{p.code}" for p in references),
        "searchRevInclude": sorted(revincludes),
        "searchParam": [
            {"name": p.code, "definition": p.url, "type": p.type}
            for p in sorted(params, key=lambda p: p.code)
            if p.url
        ],
        **({"operation": [_operation(name) for name in operations]} if operations else {}),
    }


def capability_statement(app: FastAPI, base_url: str) -> dict[str, Any]:
    type_level, system, mounted = served_interactions(app)
    system_operations, type_operations = served_operations(mounted)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": clock.to_instant(clock.now())[:10],
        "kind": "instance",
        "software": {"name": "fhir-gateway", "version": __version__},
        "implementation": {"description": "Care-coordination FHIR gateway", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "resource": [
                    _resource_entry(t, type_level, mounted, type_operations.get(t, []))
                    for t in RESOURCE_TYPES
                ],
                "interaction": [{"code": code} for code in system],
                "operation": [_operation(name) for name in system_operations],
                "searchParam": [
                    {"name": "_id", "type": "token"},
                    {"name": "_lastUpdated", "type": "date"},
                    {"name": "_tag", "type": "token"},
                    {"name": "_security", "type": "token"},
                    {"name": "_profile", "type": "uri"},
                ],
            }
        ],
    }
