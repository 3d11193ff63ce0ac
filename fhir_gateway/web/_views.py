"""Read models the pages show, built through the caller's eyes (``services.resources`` and the
store's search with the Caller): what a page may not show is never fetched for it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.context import Caller
from fhir_gateway.errors import GatewayError
from fhir_gateway.fhir.references import Reference
from fhir_gateway.monitors import MONITOR_FLAGS
from fhir_gateway.services import resources
from fhir_gateway.store.search import match_ids

__all__ = [
    "Referral",
    "referral_view",
    "visible_ids",
    "served",
    "ref_id",
    "patient_name",
    "OVERDUE_TAG",
]

OVERDUE_TAG = (MONITOR_FLAGS, "overdue")
_TERMINAL = frozenset({"completed", "failed", "rejected", "cancelled", "entered-in-error"})


@dataclass(frozen=True, slots=True)
class Referral:
    task_id: str
    version: int
    status: str
    service: str
    patient: dict[str, Any]  # the copy the caller may see (a partner: the minimum)
    owner: str | None
    deadline: str | None
    overdue: bool
    reason: str | None  # statusReason text (rejected, …)
    outcome: str | None
    service_request: str | None


def visible_ids(
    session: Session, caller: Caller, res_type: str, params: list[tuple[str, str]]
) -> list[str]:
    return match_ids(session, res_type, params, caller=caller)


def served(session: Session, caller: Caller, reference: str | None) -> dict[str, Any] | None:
    """The copy of ``Type/id`` the caller may receive, or None when it may not see it."""
    ref = Reference.parse_relative(reference)
    if ref is None or ref.type is None:
        return None
    try:
        return resources.read_served(session, ref.type, ref.id, caller).content
    except GatewayError:
        return None


def ref_id(resource: dict[str, Any], field: str) -> str | None:
    value = resource.get(field)
    return value.get("reference") if isinstance(value, dict) else None


def patient_name(patient: dict[str, Any] | None) -> str:
    for name in (patient or {}).get("name") or []:
        if name.get("text"):
            return str(name["text"])
        parts = [*(name.get("given") or []), name.get("family") or ""]
        if any(parts):
            return " ".join(p for p in parts if p)
    return "(no name)"


def _deadline(task: dict[str, Any]) -> str | None:
    return ((task.get("restriction") or {}).get("period") or {}).get("end")


def is_overdue(task: dict[str, Any]) -> bool:
    """Tagged overdue by the monitors, or past its deadline now (the monitors run on a schedule;
    a page should not wait for them)."""
    if task.get("status") in _TERMINAL:
        return False
    tags = {(t.get("system"), t.get("code")) for t in (task.get("meta") or {}).get("tag") or []}
    if OVERDUE_TAG in tags:
        return True
    end = _deadline(task)
    return bool(end) and str(end)[:10] < clock.now().date().isoformat()


def _outcome(task: dict[str, Any]) -> str | None:
    notes = [o.get("valueString") for o in task.get("output") or [] if o.get("valueString")]
    return "; ".join(notes) if notes else None


def referral_view(session: Session, caller: Caller, task_id: str) -> Referral | None:
    task = served(session, caller, f"Task/{task_id}")
    if task is None:
        return None
    request = served(session, caller, ref_id(task, "focus")) or {}
    code = request.get("code") or {}
    service = code.get("text") or next(
        (c.get("display") or c.get("code") for c in code.get("coding") or []), ""
    )
    return Referral(
        task_id=task_id,
        version=int((task.get("meta") or {}).get("versionId") or 0),
        status=task.get("status", ""),
        service=service or "(service not named)",
        patient=served(session, caller, ref_id(task, "for")) or {},
        owner=ref_id(task, "owner"),
        deadline=_deadline(task),
        overdue=is_overdue(task),
        reason=(task.get("statusReason") or {}).get("text"),
        outcome=_outcome(task),
        service_request=ref_id(task, "focus"),
    )


def today() -> date:
    return clock.now().date()
