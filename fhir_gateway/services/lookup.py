"""What the engines (care plans, referrals, monitors) need to read and store FHIR inside a
transaction, as the gateway itself: by reference, by search, and through the FHIR service so that
validation, the write hooks and the index all apply."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.context import SYSTEM, Caller
from fhir_gateway.fhir.references import Reference
from fhir_gateway.services import resources as svc
from fhir_gateway.store import repository as repo
from fhir_gateway.store.repository import StoredResource
from fhir_gateway.store.search import match_ids

__all__ = ["read", "read_all", "search", "save", "save_all"]


def read(session: Session, reference: str | None) -> dict[str, Any] | None:
    """The current content behind ``Type/id`` (None when absent, deleted or not a reference)."""
    parsed = Reference.parse(reference) if reference else None
    if parsed is None or parsed.type is None:
        return None
    stored = repo.read(session, parsed.type, parsed.id)
    return None if stored is None or stored.deleted else stored.content


def read_all(session: Session, references: list[str]) -> dict[str, dict[str, Any]]:
    """``read`` of several ``Type/id`` references in one query: those current, by reference."""
    keys = {}
    for reference in references:
        parsed = Reference.parse(reference)
        if parsed is not None and parsed.type is not None:
            keys[reference] = (parsed.type, parsed.id)
    found = repo.read_keys(session, list(dict.fromkeys(keys.values()))) if keys else {}
    return {
        reference: stored.content
        for reference, key in keys.items()
        if (stored := found.get(key)) is not None and not stored.deleted
    }


def search(session: Session, res_type: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Every current match of a search, unfiltered: the gateway's own view."""
    found = repo.read_many(session, res_type, match_ids(session, res_type, params, caller=SYSTEM))
    return [s.content for s in found if not s.deleted]


def save(session: Session, doc: dict[str, Any], caller: Caller = SYSTEM) -> StoredResource | None:
    """Create or update ``doc`` (which carries its id) through the FHIR service. The engines build
    it from validated templates and stored resources; it meets the validation every write meets
    (``validate_resource``)."""
    return svc.update(session, doc["resourceType"], doc["id"], doc, caller).stored


def save_all(
    session: Session,
    docs: list[dict[str, Any]],
    caller: Caller = SYSTEM,
    *,
    restated: bool = False,
) -> list[StoredResource | None]:
    """``save`` of several documents, stored together (``resources.update_many``): validated once
    each, read, created and indexed in one statement per table for each run of one type, and the
    batch rules called once per run. ``restated``: stored resources with only a status, a text
    note or references to what the engine stored changed, not validated again (``update_many``'s
    ``validate=False``)."""
    results = svc.update_many(session, docs, caller, validate=not restated)
    return [r.stored for r in results]
