"""Load the shipped templates and partner directory (and the user's own directories) into the store.

Idempotent, with stable ids: a shipped resource is created when absent and replaced only by a newer
shipped ``version``, so edits made through the REST API survive a restart. Files in the user's
directories (``FHIR_GATEWAY_CAREPLANS``, ``FHIR_GATEWAY_PARTNERS``) are theirs: they are PUT as they
are (an unchanged file makes no new version).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

import mappings
from fhir_gateway.careplans._templates import TEMPLATE_TYPES, read_directory
from fhir_gateway.context import SYSTEM
from fhir_gateway.services import resources as svc
from fhir_gateway.settings import Settings
from fhir_gateway.store import repository as repo

__all__ = [
    "SHIPPED_TEMPLATES",
    "SHIPPED_PARTNERS",
    "SHIPPED_ASSESSMENT_RULES",
    "PARTNER_TYPES",
    "seed",
]

SHIPPED_TEMPLATES = Path(mappings.__file__).parent / "careplans"
SHIPPED_PARTNERS = Path(mappings.__file__).parent / "partners"
# the rules that revise a plan from screening results, their activities and the SDOH answer map
SHIPPED_ASSESSMENT_RULES = Path(mappings.__file__).parent / "assessments"
PARTNER_TYPES = ("Organization", "HealthcareService", "Endpoint", "Location")


def _version(doc: dict[str, Any] | None) -> tuple[int, ...]:
    text = str((doc or {}).get("version") or "0")
    return tuple(int(p) if p.isdigit() else 0 for p in text.split("."))


def _put(session: Session, doc: dict[str, Any], *, shipped: bool) -> bool:
    current = repo.read(session, doc["resourceType"], doc["id"])
    if shipped and current is not None and not current.deleted:
        if _version(doc) <= _version(current.content):
            return False
    elif shipped and current is not None and current.deleted:
        return False  # deleted through the API on purpose: keep it deleted
    result = svc.update(session, doc["resourceType"], doc["id"], doc, SYSTEM)
    return result.status == 201 or current is None or current.version_id != result.stored.version_id  # type: ignore[union-attr]


def seed(session: Session, settings: Settings) -> int:
    """Store shipped and user templates and partners; returns how many resources changed."""
    sources: list[tuple[Path, tuple[str, ...], bool]] = [
        (SHIPPED_PARTNERS, PARTNER_TYPES, True),
        (SHIPPED_TEMPLATES, TEMPLATE_TYPES, True),
        (SHIPPED_ASSESSMENT_RULES, (*TEMPLATE_TYPES, "ConceptMap"), True),
    ]
    if settings.partners:
        sources.append((Path(settings.partners), PARTNER_TYPES, False))
    if settings.careplans:
        sources.append((Path(settings.careplans), TEMPLATE_TYPES, False))
    changed = 0
    for path, types, shipped in sources:
        for doc in read_directory(path, types):
            changed += _put(session, doc, shipped=shipped)
    return changed
