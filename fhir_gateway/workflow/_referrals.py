"""Small helpers over referral resources in the store: what a referral Task is, reading and
saving as the gateway, and the Tasks of a ServiceRequest."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.services.lookup import read, read_all, save, search

__all__ = [
    "tasks_of",
    "TASK_CODE",
    "is_referral",
    "ref",
    "read",
    "read_all",
    "search",
    "save",
    "tasks_for",
    "status_reason",
]

TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"


def ref(doc: dict[str, Any] | None, field: str) -> str | None:
    value = (doc or {}).get(field)
    return value.get("reference") if isinstance(value, dict) else None


def is_referral(task: dict[str, Any] | None) -> bool:
    """A Task that fulfils a ServiceRequest: ``code`` fulfill, or a ServiceRequest ``focus``."""
    if not task:
        return False
    codes = {(c.get("system"), c.get("code")) for c in (task.get("code") or {}).get("coding", [])}
    return (TASK_CODE, "fulfill") in codes or (ref(task, "focus") or "").startswith(
        "ServiceRequest/"
    )


def tasks_for(session: Session, request_ref: str) -> list[dict[str, Any]]:
    return search(session, "Task", [("focus", request_ref)])


def tasks_of(session: Session, request_refs: list[str]) -> dict[str, list[dict[str, Any]]]:
    """``tasks_for`` of several requests, by request: one search per 100 of them."""
    unique = list(dict.fromkeys(request_refs))
    found: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(unique), 100):  # references ORed in one search parameter
        chunk = ",".join(unique[start : start + 100])
        for task in search(session, "Task", [("focus", chunk)]):
            found.setdefault((task.get("focus") or {}).get("reference") or "", []).append(task)
    return found


def status_reason(text: str) -> dict[str, str]:
    return {"text": text}
