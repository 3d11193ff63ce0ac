"""The schedule and the messages as data: ``PlanDefinition/caring-contacts`` and
``ActivityDefinition/caring-contact``, shipped in ``mappings/contacts/``. ``seed`` stores them (a
shipped file replaces the stored copy only when its ``version`` is newer, like the care-plan
templates), so a user edits them through the REST API; until they are stored the shipped files
are read."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.orm import Session

import mappings
from fhir_gateway.contacts._codes import ACTIVITY_ID, PLAN_ID
from fhir_gateway.context import SYSTEM
from fhir_gateway.services import resources as svc
from fhir_gateway.services.lookup import read

__all__ = ["SHIPPED", "plan", "activity", "seed"]

SHIPPED = Path(mappings.__file__).parent / "contacts"


@lru_cache(maxsize=4)
def _shipped(name: str) -> dict[str, Any]:
    return dict(orjson.loads((SHIPPED / name).read_bytes()))


def plan(session: Session) -> dict[str, Any]:
    stored = read(session, f"PlanDefinition/{PLAN_ID}")
    return stored if stored is not None else _shipped(f"PlanDefinition-{PLAN_ID}.json")


def activity(session: Session) -> dict[str, Any]:
    stored = read(session, f"ActivityDefinition/{ACTIVITY_ID}")
    return stored if stored is not None else _shipped(f"ActivityDefinition-{ACTIVITY_ID}.json")


def _version(doc: dict[str, Any] | None) -> tuple[int, ...]:
    text = str((doc or {}).get("version") or "0")
    return tuple(int(p) if p.isdigit() else 0 for p in text.split("."))


def seed(session: Session) -> int:
    """Store the shipped schedule and messages unless a copy as new is stored; returns changes."""
    changed = 0
    for name in (f"PlanDefinition-{PLAN_ID}.json", f"ActivityDefinition-{ACTIVITY_ID}.json"):
        doc = _shipped(name)
        current = read(session, f"{doc['resourceType']}/{doc['id']}")
        if current is not None and _version(doc) <= _version(current):
            continue
        svc.update(session, doc["resourceType"], doc["id"], dict(doc), SYSTEM)
        changed += 1
    return changed
