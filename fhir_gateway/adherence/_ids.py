"""Deterministic ids (one patient and class always name the same Observation or Flag, so a repeated
run or a second worker meets the primary key, never a twin), keyed with the installation's secret
so that no client can derive them; and the per-patient lock a measurement runs under."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from fhir_gateway.context import SYSTEM
from fhir_gateway.services import resources as svc
from fhir_gateway.store import repository as repo
from fhir_gateway.store.keyed_ids import keyed_id

__all__ = ["adherence_id", "create_once", "lock"]

_NAMESPACE = uuid.UUID("5d0c7b52-8f0e-4a41-9a57-2b6f1c3e8d90")


def adherence_id(*parts: str) -> str:
    return keyed_id(_NAMESPACE, "|".join(parts))


def create_once(session: Session, doc: dict[str, Any]) -> bool:
    """Store ``doc`` under its id unless it exists; True when this call created it."""
    existing = repo.read(session, doc["resourceType"], doc["id"])
    if existing is not None and not existing.deleted:
        return False
    return svc.update(session, doc["resourceType"], doc["id"], doc, SYSTEM).created


def lock(session: Session, *parts: str) -> None:
    """One measurement of a patient at a time across workers (PostgreSQL advisory lock; SQLite's
    single writer already serialises)."""
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.blake2b("|".join(parts).encode(), digest_size=8).digest()
        key = int.from_bytes(digest, "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
