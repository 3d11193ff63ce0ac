"""Store the shipped instruments (and the user's own) at start, the way the care-plan templates are
stored: stable ids; a shipped file replaces the stored copy only when its ``version`` is newer, so
edits through the API survive a restart, and one deleted through the API stays deleted. Files in
the user's directory (``FHIR_GATEWAY_ASSESSMENTS``) are theirs: PUT as they are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.orm import Session

import mappings
from fhir_gateway.context import SYSTEM
from fhir_gateway.errors import BusinessRule
from fhir_gateway.services import resources as svc
from fhir_gateway.settings import Settings
from fhir_gateway.store import repository as repo

__all__ = ["SHIPPED_INSTRUMENTS", "seed", "read_instruments"]

SHIPPED_INSTRUMENTS = Path(mappings.__file__).parent / "assessments"
MAX_FILES = 1000


def read_instruments(path: Path) -> list[dict[str, Any]]:
    """Every Questionnaire ``*.json`` in ``path`` (sorted by file name); each needs an id."""
    out = []
    for file in sorted(path.glob("*.json"))[:MAX_FILES]:
        doc = orjson.loads(file.read_bytes())
        if isinstance(doc, dict) and doc.get("resourceType") == "Questionnaire":
            if not doc.get("id"):
                raise BusinessRule(f"{file} has no id: instruments need stable ids")
            out.append(doc)
    return out


def _version(doc: dict[str, Any] | None) -> tuple[int, ...]:
    text = str((doc or {}).get("version") or "0")
    return tuple(int(p) if p.isdigit() else 0 for p in text.split("."))


def _put(session: Session, doc: dict[str, Any], *, shipped: bool) -> bool:
    current = repo.read(session, "Questionnaire", doc["id"])
    if shipped and current is not None:
        if current.deleted or _version(doc) <= _version(current.content):
            return False  # kept: an edit made through the API, or a deletion on purpose
    before = current.version_id if current is not None else None
    result = svc.update(session, "Questionnaire", doc["id"], doc, SYSTEM)
    return result.stored is not None and result.stored.version_id != before


def seed(session: Session, settings: Settings) -> int:
    """Store shipped and user instruments; returns how many changed."""
    sources = [(SHIPPED_INSTRUMENTS, True)]
    if settings.assessments:
        sources.append((Path(settings.assessments), False))
    return sum(
        _put(session, doc, shipped=shipped)
        for path, shipped in sources
        for doc in read_instruments(path)
    )
