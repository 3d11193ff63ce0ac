"""What a CapabilityStatement claims, as plain sets the checks can ask about."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Claims", "TypeClaims", "parse_claims"]


@dataclass(slots=True)
class TypeClaims:
    type: str
    interactions: set[str] = field(default_factory=set)
    params: dict[str, str] = field(default_factory=dict)  # name → FHIR search type
    definitions: dict[str, str] = field(default_factory=dict)  # name → SearchParameter url
    includes: set[str] = field(default_factory=set)
    revincludes: set[str] = field(default_factory=set)
    versioning: str = "no-version"
    read_history: bool = False
    update_create: bool = False
    conditional_create: bool = False
    conditional_update: bool = False
    conditional_delete: str = "not-supported"
    profiles: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Claims:
    statement: dict[str, Any]
    types: dict[str, TypeClaims] = field(default_factory=dict)
    system_interactions: set[str] = field(default_factory=set)
    system_params: dict[str, str] = field(default_factory=dict)
    formats: set[str] = field(default_factory=set)
    patch_formats: set[str] = field(default_factory=set)

    def has(self, res_type: str, interaction: str) -> bool:
        claims = self.types.get(res_type)
        return claims is not None and interaction in claims.interactions

    def param(self, res_type: str, name: str) -> str | None:
        """The search type of ``name`` on ``res_type`` if claimed there or for the whole system."""
        claims = self.types.get(res_type)
        if claims is not None and name in claims.params:
            return claims.params[name]
        return self.system_params.get(name)

    def includes(self, res_type: str, include: str) -> bool:
        claims = self.types.get(res_type)
        return claims is not None and (include in claims.includes or "*" in claims.includes)

    def revincludes(self, res_type: str, revinclude: str) -> bool:
        claims = self.types.get(res_type)
        return claims is not None and (
            revinclude in claims.revincludes or "*" in claims.revincludes
        )


def _type_claims(entry: Mapping[str, Any]) -> TypeClaims:
    claims = TypeClaims(type=entry["type"])
    claims.interactions = {i.get("code") for i in entry.get("interaction", []) if i.get("code")}
    for param in entry.get("searchParam", []):
        if "name" in param:
            claims.params[param["name"]] = param.get("type", "special")
            if "definition" in param:
                claims.definitions[param["name"]] = param["definition"]
    claims.includes = set(entry.get("searchInclude", []))
    claims.revincludes = set(entry.get("searchRevInclude", []))
    claims.versioning = entry.get("versioning", "no-version")
    claims.read_history = bool(entry.get("readHistory", False))
    claims.update_create = bool(entry.get("updateCreate", False))
    claims.conditional_create = bool(entry.get("conditionalCreate", False))
    claims.conditional_update = bool(entry.get("conditionalUpdate", False))
    claims.conditional_delete = entry.get("conditionalDelete", "not-supported")
    claims.profiles = set(entry.get("supportedProfile", [])) | (
        {entry["profile"]} if "profile" in entry else set()
    )
    return claims


def parse_claims(statement: dict[str, Any]) -> Claims:
    claims = Claims(statement=statement)
    claims.formats = set(statement.get("format", []))
    claims.patch_formats = set(statement.get("patchFormat", []))
    for rest in statement.get("rest", []):
        if rest.get("mode") != "server":
            continue
        for entry in rest.get("resource", []):
            if "type" in entry:
                claims.types[entry["type"]] = _type_claims(entry)
        claims.system_interactions |= {
            i.get("code") for i in rest.get("interaction", []) if i.get("code")
        }
        for param in rest.get("searchParam", []):
            if "name" in param:
                claims.system_params[param["name"]] = param.get("type", "special")
    return claims
