"""The CapabilityStatement, generated from what is really served: the resource types, the routes
the app has mounted, and the search parameters in the registry. Nothing here is kept by hand."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from fhir_gateway import __version__, clock
from fhir_gateway.fhir.types import RESOURCE_TYPES
from fhir_gateway.search.registry import get_registry

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


def served_interactions(app: FastAPI) -> tuple[list[str], list[str], set[tuple[str, str]]]:
    routes = [r for router in app.state.fhir_routers for r in router.routes]
    mounted = {(r.path, m) for r in routes if isinstance(r, APIRoute) for m in r.methods}
    type_level = [code for key, code in _TYPE_ROUTES.items() if key in mounted]
    system = [code for key, codes in _SYSTEM_ROUTES.items() if key in mounted for code in codes]
    return type_level, system, mounted


def _resource_entry(res_type: str, interactions: list[str], mounted: set[tuple[str, str]]) -> dict[str, Any]:
    registry = get_registry()
    params = registry.params_for(res_type)
    references = [p for p in params if p.type == "reference"]
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
        "searchRevInclude": sorted(registry.revincludes_for(res_type)),
        "searchParam": [
            {"name": p.code, "definition": p.url, "type": p.type}
            for p in sorted(params, key=lambda p: p.code)
            if p.url
        ],
    }


def capability_statement(app: FastAPI, base_url: str) -> dict[str, Any]:
    type_level, system, mounted = served_interactions(app)
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
                "resource": [_resource_entry(t, type_level, mounted) for t in RESOURCE_TYPES],
                "interaction": [{"code": code} for code in system],
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
