"""The shipped relapse Questionnaires (``mappings/relapse/``), stored with stable ids: created
when absent, replaced only by a newer shipped ``version`` (an edit through the API survives a
restart; one deleted through the API stays deleted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.orm import Session

import mappings
from fhir_gateway.context import SYSTEM
from fhir_gateway.services import resources
from fhir_gateway.store import repository as repo

__all__ = ["SHIPPED", "questionnaires", "seed"]

SHIPPED = Path(mappings.__file__).parent / "relapse"


def questionnaires() -> list[dict[str, Any]]:
    docs = [orjson.loads(f.read_bytes()) for f in sorted(SHIPPED.glob("Questionnaire-*.json"))]
    return [d for d in docs if isinstance(d, dict) and d.get("resourceType") == "Questionnaire"]


def _newer(doc: dict[str, Any], current: dict[str, Any]) -> bool:
    def version(d: dict[str, Any]) -> tuple[int, ...]:
        return tuple(int(p) if p.isdigit() else 0 for p in str(d.get("version") or "0").split("."))

    return version(doc) > version(current)


def seed(session: Session) -> int:
    """Store the shipped Questionnaires; returns how many changed."""
    changed = 0
    for doc in questionnaires():
        current = repo.read(session, "Questionnaire", doc["id"])
        if current is not None and (current.deleted or not _newer(doc, current.content)):
            continue
        resources.update(session, "Questionnaire", doc["id"], doc, SYSTEM)
        changed += 1
    return changed
