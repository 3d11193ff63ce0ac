"""The monitors' reads and writes, as the gateway (the SYSTEM caller) through the FHIR service, so
that validation, indexing, history, subscriptions (the outbox) and the other concerns' write hooks
see every alert like any other change."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from fhir_gateway import privacy
from fhir_gateway.context import SYSTEM
from fhir_gateway.fhir.references import Reference
from fhir_gateway.monitors._ids import lock_key
from fhir_gateway.services import lookup
from fhir_gateway.services import resources as svc
from fhir_gateway.services.lookup import read, search
from fhir_gateway.store import repository as repo

__all__ = [
    "read",
    "search",
    "CHUNK",
    "chunks",
    "save",
    "create_once",
    "ref",
    "local_ref",
    "labels_of",
    "lock",
    "has_tag",
    "with_tags",
]


CHUNK = 100  # references ORed in one search parameter: the search engine's default limit


def chunks(values: Sequence[str]) -> Iterator[list[str]]:
    """``values`` without repeats, in slices of at most ``CHUNK``, for ``name=a,b,c`` searches."""
    unique = list(dict.fromkeys(values))
    for start in range(0, len(unique), CHUNK):
        yield unique[start : start + CHUNK]


def ref(doc: dict[str, Any] | None, field: str) -> str | None:
    value = (doc or {}).get(field)
    return value.get("reference") if isinstance(value, dict) else None


def local_ref(reference: str | None) -> str:
    """``Type/id`` of a literal reference (its base and version dropped); "" for anything else."""
    parsed = Reference.parse(reference) if reference else None
    return f"{parsed.type}/{parsed.id}" if parsed is not None and parsed.type else ""


def save(session: Session, doc: dict[str, Any]) -> str:
    lookup.save(session, doc)
    return f"{doc['resourceType']}/{doc['id']}"


def create_once(session: Session, doc: dict[str, Any]) -> bool:
    """Store ``doc`` under its deterministic id unless it exists; True when this call created it.
    A concurrent creator meets the primary key (Conflict, the transaction retried), never a twin.
    Built by the monitors from stored resources."""
    existing = repo.read(session, doc["resourceType"], doc["id"])
    if existing is not None and not existing.deleted:
        return False
    return svc.update(session, doc["resourceType"], doc["id"], doc, SYSTEM).created


def labels_of(*docs: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The security labels of the resources an alert derives from (PSY, Part 2), without repeats:
    an alert that repeats their words goes only where their labels go."""
    return privacy.merge_labels(*(privacy.labels_of(doc) for doc in docs))


def has_tag(doc: dict[str, Any], system: str, code: str) -> bool:
    return any(
        t.get("system") == system and t.get("code") == code
        for t in (doc.get("meta") or {}).get("tag", [])
    )


def with_tags(doc: dict[str, Any], system: str, codes: set[str]) -> dict[str, Any]:
    """``doc`` whose tags of ``system`` are exactly ``codes`` (other systems' tags untouched)."""
    from fhir_gateway.monitors._codes import tag

    meta = dict(doc.get("meta") or {})
    kept = [t for t in meta.get("tag", []) if t.get("system") != system]
    tags = kept + [tag(c) for c in sorted(codes)]
    if tags:
        meta["tag"] = tags
    else:
        meta.pop("tag", None)
    return {**doc, "meta": meta}


def lock(session: Session, *parts: str) -> None:
    """Serialise work on one subject across workers: a PostgreSQL transaction-level advisory lock
    (SQLite's single writer, BEGIN IMMEDIATE, already serialises)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(*parts)})
