"""Small helpers over referral resources in the store: what a referral Task is, reading and
saving as the gateway, and the Tasks of a ServiceRequest."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.context import SYSTEM, Caller
from fhir_gateway.fhir.references import Reference
from fhir_gateway.services import resources as svc
from fhir_gateway.store import repository as repo
from fhir_gateway.store.repository import StoredResource
from fhir_gateway.store.search import match_ids

__all__ = ["TASK_CODE", "is_referral", "ref", "read", "search", "save", "tasks_for", "status_reason"]

TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"


def ref(doc: dict[str, Any] | None, field: str) -> str | None:
    value = (doc or {}).get(field)
    return value.get("reference") if isinstance(value, dict) else None


def is_referral(task: dict[str, Any] | None) -> bool:
    """A Task that fulfils a ServiceRequest: ``code`` fulfill, or a ServiceRequest ``focus``."""
    if not task:
        return False
    codes = {(c.get("system"), c.get("code")) for c in (task.get("code") or {}).get("coding", [])}
    return (TASK_CODE, "fulfill") in codes or (ref(task, "focus") or "").startswith("ServiceRequest/")


def read(session: Session, reference: str | None) -> dict[str, Any] | None:
    parsed = Reference.parse(reference)
    if parsed is None or parsed.type is None:
        return None
    stored = repo.read(session, parsed.type, parsed.id)
    return None if stored is None or stored.deleted else stored.content


def search(session: Session, res_type: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    found = (repo.read(session, res_type, i) for i in match_ids(session, res_type, params, caller=SYSTEM))
    return [s.content for s in found if s is not None and not s.deleted]


def save(session: Session, doc: dict[str, Any], caller: Caller = SYSTEM) -> StoredResource | None:
    """Store a change through the FHIR service, so that its checks and consequences run too."""
    return svc.update(session, doc["resourceType"], doc["id"], doc, caller).stored


def tasks_for(session: Session, request_ref: str) -> list[dict[str, Any]]:
    return search(session, "Task", [("focus", request_ref)])


def status_reason(text: str) -> dict[str, str]:
    return {"text": text}
