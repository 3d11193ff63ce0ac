"""What ``fhir-gateway monitors`` lists: the referrals tagged overdue and the active alerts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.monitors._codes import (
    CRISIS,
    ESCALATED,
    MONITOR_FLAGS,
    OVERDUE,
    READMISSION,
    WORK_ITEMS,
)
from fhir_gateway.monitors._fhir import has_tag, read, ref, search

__all__ = ["OverdueRow", "overdue_referrals", "alerts"]


@dataclass(frozen=True, slots=True)
class OverdueRow:
    task: str
    patient: str | None
    owner: str | None
    status: str
    deadline: str | None
    title: str
    escalated: bool


def overdue_referrals(session: Session) -> list[OverdueRow]:
    rows = []
    for task in search(session, "Task", [("_tag", f"{MONITOR_FLAGS}|{OVERDUE}")]):
        request = read(session, ref(task, "focus")) or {}
        rows.append(
            OverdueRow(
                task=f"Task/{task['id']}",
                patient=ref(task, "for"),
                owner=ref(task, "owner"),
                status=task.get("status", ""),
                deadline=((task.get("restriction") or {}).get("period") or {}).get("end"),
                title=(request.get("code") or {}).get("text") or "",
                escalated=has_tag(task, MONITOR_FLAGS, ESCALATED),
            )
        )
    return sorted(rows, key=lambda r: (not r.escalated, r.deadline or "", r.task))


def alerts(session: Session) -> list[dict[str, Any]]:
    """The monitors' active Flags (readmission, crisis, overdue, and the work items: unassigned,
    late, deadline-at-risk, rerouted, no-encounter, unable-to-contact), newest first."""
    codes = ",".join(f"{MONITOR_FLAGS}|{c}" for c in (READMISSION, CRISIS, OVERDUE, *WORK_ITEMS))
    flags = [
        f for f in search(session, "Flag", [("_tag", codes)]) if f.get("status") == "active"
    ]  # R4: no Flag?status
    return sorted(flags, key=lambda f: (f.get("period") or {}).get("start", ""), reverse=True)
