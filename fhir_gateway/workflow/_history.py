"""Every referral transition is kept twice: as a Task version (the store keeps them all) and as a
Provenance naming who made it. From the versions: the time a Task spent in each state, when its
current owner received it, and every partner that has held a referral."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.context import SYSTEM, Caller
from fhir_gateway.services import resources as svc
from fhir_gateway.store.repository import StoredResource
from fhir_gateway.store.tables import resource_versions

__all__ = [
    "TRANSITION_EXT",
    "record_transition",
    "StateSpan",
    "time_in_states",
    "durations",
    "received_at",
    "owners_over_time",
]

TRANSITION_EXT = "http://fhir-gateway.org/fhir/StructureDefinition/task-transition"
_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def _agent(caller: Caller) -> dict[str, Any]:
    who = (
        {"reference": caller.organization} if caller.organization else {"display": caller.client_id}
    )
    return {
        "type": {"coding": [{"system": _PARTICIPANT, "code": "author"}]},
        "who": who,
        "extension": [{"url": f"{TRANSITION_EXT}-role", "valueCode": caller.role}],
    }


def record_transition(
    session: Session, caller: Caller, stored: StoredResource, previous: str | None
) -> None:
    """A Provenance for the Task version ``stored``: who moved it from ``previous`` to its status."""
    status = stored.content.get("status")
    parts = [{"url": "to", "valueCode": status}]
    if previous:
        parts.insert(0, {"url": "from", "valueCode": previous})
    provenance = {
        "resourceType": "Provenance",
        "extension": [{"url": TRANSITION_EXT, "extension": parts}],
        "target": [{"reference": f"Task/{stored.res_id}/_history/{stored.version_id}"}],
        "recorded": clock.to_instant(stored.last_updated),
        "activity": {
            "coding": [{"system": _OPERATION, "code": "UPDATE" if previous else "CREATE"}],
            "text": f"{previous or '(new)'} → {status}",
        },
        "agent": [_agent(caller)],
    }
    if stored.content.get("statusReason"):
        provenance["reason"] = [stored.content["statusReason"]]
    svc.create(session, "Provenance", provenance, SYSTEM)


@dataclass(frozen=True, slots=True)
class StateSpan:
    status: str
    start: datetime
    end: datetime | None  # None: still in it (or a final state)
    version: int

    def duration(self, until: datetime) -> timedelta:
        return (self.end or until) - self.start


def _versions(session: Session, task_id: str) -> list[Any]:
    return list(
        session.execute(
            select(
                resource_versions.c.version_id,
                resource_versions.c.last_updated,
                resource_versions.c.content,
                resource_versions.c.deleted,
            )
            .where(resource_versions.c.res_type == "Task", resource_versions.c.res_id == task_id)
            .order_by(resource_versions.c.version_id)
        ).all()
    )


def _owner(content: dict[str, Any]) -> str | None:
    return (content.get("owner") or {}).get("reference")


def received_at(session: Session, task_id: str) -> datetime | None:
    """When the Task's current owner received it: the version that sent it (draft → requested),
    or that gave it to this owner (a case manager's re-assignment, a claim). None: never sent."""
    start: datetime | None = None
    previous: tuple[str | None, str | None] | None = None
    for row in _versions(session, task_id):
        status = None if row.deleted else row.content.get("status")
        if status in (None, "draft"):
            start, previous = None, None
            continue
        owner = _owner(row.content)
        if (
            previous is None
            or previous[1] != owner
            or (status == "requested" and previous[0] != "requested")
        ):
            start = clock.from_db(row.last_updated)
        previous = (status, owner)
    return start


def owners_over_time(session: Session, task_ids: list[str]) -> list[str]:
    """Every organisation that has owned one of these Tasks, first owner first, once each."""
    seen: dict[str, datetime] = {}
    for task_id in task_ids:
        for row in _versions(session, task_id):
            owner = None if row.deleted else _owner(row.content)
            if owner and row.content.get("status") != "draft":
                seen.setdefault(owner, clock.from_db(row.last_updated))
    return sorted(seen, key=lambda o: seen[o])


def time_in_states(session: Session, task_id: str) -> list[StateSpan]:
    """The Task's states in order, each from the version that entered it to the one that left it."""
    rows = _versions(session, task_id)
    spans: list[StateSpan] = []
    for row in rows:
        when = clock.from_db(row.last_updated)
        status = None if row.deleted else row.content.get("status")
        if spans and spans[-1].status == status:
            continue
        if spans:
            last = spans[-1]
            spans[-1] = StateSpan(last.status, last.start, when, last.version)
        if status is not None:
            spans.append(StateSpan(status, when, None, row.version_id))
    return spans


def durations(spans: list[StateSpan], until: datetime | None = None) -> dict[str, timedelta]:
    """Total time per state; a state still current counts up to ``until`` (now), final ones count 0."""
    until = until or clock.now()
    out: dict[str, timedelta] = defaultdict(timedelta)
    for span in spans:
        final = span.end is None and span.status in (
            "completed",
            "failed",
            "rejected",
            "cancelled",
            "entered-in-error",
        )
        out[span.status] += timedelta(0) if final else span.duration(until)
    return dict(out)
