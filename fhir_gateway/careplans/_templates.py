"""Care-plan templates are FHIR data: PlanDefinition and ActivityDefinition resources.

Shipped ones live in ``mappings/careplans/`` and a user's own in ``FHIR_GATEWAY_CAREPLANS``; both are
stored at start (``seed``) so that they can be read, edited and added to through the REST API. The
engine always applies what is stored, compiled once per stored version (``template_set``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_gateway.careplans._cache import StoredDataCache
from fhir_gateway.careplans._fhirpath import TemplateError, compiled
from fhir_gateway.store.tables import resources

__all__ = [
    "TEMPLATE_TYPES",
    "DISCHARGE_CONTEXT",
    "TemplateSet",
    "read_directory",
    "template_set",
    "expressions",
    "is_discharge_plan",
]

TEMPLATE_TYPES = ("PlanDefinition", "ActivityDefinition")
DISCHARGE_CONTEXT = ("http://snomed.info/sct", "58000006")  # useContext: applied on discharge


def read_directory(path: Path, types: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every ``*.json`` resource of ``types`` in ``path`` (sorted by file name)."""
    out = []
    for file in sorted(path.glob("*.json")):
        doc = orjson.loads(file.read_bytes())
        if isinstance(doc, dict) and doc.get("resourceType") in types:
            if not doc.get("id"):
                raise TemplateError(f"{file} has no id: templates need stable ids")
            out.append(doc)
    return out


def is_discharge_plan(plan: dict[str, Any]) -> bool:
    for context in plan.get("useContext", []):
        for coding in (context.get("valueCodeableConcept") or {}).get("coding", []):
            if (coding.get("system"), coding.get("code")) == DISCHARGE_CONTEXT:
                return True
    return False


def expressions(node: Any) -> list[str]:
    """Every FHIRPath expression in a template (conditions and dynamic values)."""
    found: list[str] = []
    if isinstance(node, dict):
        expr = node.get("expression")
        if (
            isinstance(expr, dict)
            and expr.get("language") == "text/fhirpath"
            and expr.get("expression")
        ):
            found.append(expr["expression"])
        for value in node.values():
            found.extend(expressions(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(expressions(value))
    return found


@dataclass(slots=True)
class TemplateSet:
    """The stored templates, by canonical URL and by ``Type/id``."""

    by_url: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_ref: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, doc: dict[str, Any]) -> None:
        for expr in expressions(doc):
            compiled(expr)  # fail early, and compile each expression once
        self.by_ref[f"{doc['resourceType']}/{doc['id']}"] = doc
        if doc.get("url"):
            self.by_url[doc["url"]] = doc

    def resolve(
        self, canonical: str, contained: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        if canonical.startswith("#"):
            for doc in contained or []:
                if doc.get("id") == canonical[1:]:
                    return doc
        url = canonical.split("|", 1)[0]
        found = self.by_url.get(url) or self.by_ref.get(url)
        if found is None:
            raise TemplateError(f"No stored PlanDefinition or ActivityDefinition has the URL {url}")
        return found

    def discharge_plans(self) -> list[dict[str, Any]]:
        plans = [
            d
            for ref, d in self.by_ref.items()
            if ref.startswith("PlanDefinition/")
            and d.get("status") == "active"
            and is_discharge_plan(d)
        ]
        return sorted(plans, key=lambda d: d["id"])


def _load(session: Session) -> TemplateSet:
    templates = TemplateSet()
    rows = session.execute(
        select(resources.c.content).where(
            resources.c.res_type.in_(TEMPLATE_TYPES), resources.c.deleted.is_(False)
        )
    ).scalars()
    for content in rows:
        templates.add(content if isinstance(content, dict) else orjson.loads(content))
    return templates


_templates = StoredDataCache(TEMPLATE_TYPES, _load)


def template_set(session: Session) -> TemplateSet:
    return _templates.get(session)
