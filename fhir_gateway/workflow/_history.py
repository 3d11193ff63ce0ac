"""Every referral transition is kept twice: as a Task version (the store keeps them all) and in a
Provenance naming who made it, one per agent and transaction (a discharge's new referrals, a
partner's request), with a ``task-transition`` extension per transition (its Task version as
``target``, ``from``, ``to``, ``reason``). From the versions: the time a Task spent in each state,
when its current owner received it, and every partner that has held a referral."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.context import SYSTEM, Caller
from fhir_gateway.services import resources as svc
from fhir_gateway.store import transaction_memo
from fhir_gateway.store.repository import StoredResource
from fhir_gateway.store.tables import resource_versions

__all__ = [
    "TRANSITION_EXT",
    "record_transition",
    "flush_provenance",
    "forget_transitions",
    "StateSpan",
    "time_in_states",
    "durations",
    "received_at",
    "owners_over_time",
    "owners_over_time_of",
]

TRANSITION_EXT = "http://fhir-gateway.org/fhir/StructureDefinition/task-transition"
_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


_NOTED = "workflow.transitions"  # session.info: the transitions waiting for their Provenance


@dataclass(frozen=True, slots=True)
class _Transition:
    caller: Caller
    stored: StoredResource
    previous: str | None
    savepoints: tuple[Any, ...]  # the open savepoints it was made in (their rollback drops it)

    @property
    def target(self) -> str:
        return f"Task/{self.stored.res_id}/_history/{self.stored.version_id}"

    @property
    def text(self) -> str:
        return f"{self.previous or '(new)'} → {self.stored.content.get('status')}"


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
    """Note that ``caller`` moved the Task version ``stored`` from ``previous`` to its status; the
    transaction's transitions get their Provenance together (``flush_provenance``)."""
    noted = session.info.setdefault(_NOTED, [])
    noted.append(_Transition(caller, stored, previous, transaction_memo.savepoints(session)))


def forget_transitions(session: Session, transaction: Any) -> None:
    """A rollback: a savepoint's takes its own transitions with it, the transaction's all."""
    transaction_memo.forget_noted(session, _NOTED, transaction)


def flush_provenance(session: Session) -> None:
    """One Provenance per agent for the transitions noted in this transaction: a discharge's
    referrals get one, a partner's request one, naming every Task version it made. Built here
    from stored Tasks."""
    groups: dict[tuple[str, str, str | None], list[_Transition]] = {}
    for noted in session.info.pop(_NOTED, None) or []:
        key = (noted.caller.client_id, noted.caller.role, noted.caller.organization)
        groups.setdefault(key, []).append(noted)
    for transitions in groups.values():
        svc.create(session, "Provenance", _provenance(transitions), SYSTEM)


def _part(transition: _Transition) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"url": "target", "valueReference": {"reference": transition.target}}
    ]
    if transition.previous:
        parts.append({"url": "from", "valueCode": transition.previous})
    parts.append({"url": "to", "valueCode": transition.stored.content.get("status")})
    if transition.stored.content.get("statusReason"):
        parts.append(
            {"url": "reason", "valueCodeableConcept": transition.stored.content["statusReason"]}
        )
    return {"url": TRANSITION_EXT, "extension": parts}


def _provenance(transitions: list[_Transition]) -> dict[str, Any]:
    created = all(t.previous is None for t in transitions)
    reasons = [
        t.stored.content["statusReason"]
        for t in transitions
        if t.stored.content.get("statusReason")
    ]
    provenance: dict[str, Any] = {
        "resourceType": "Provenance",
        "extension": [_part(t) for t in transitions],
        "target": [{"reference": t} for t in dict.fromkeys(t.target for t in transitions)],
        "recorded": clock.to_instant(max(t.stored.last_updated for t in transitions)),
        "activity": {
            "coding": [{"system": _OPERATION, "code": "CREATE" if created else "UPDATE"}],
            "text": "; ".join(dict.fromkeys(t.text for t in transitions)),
        },
        "agent": [_agent(transitions[0].caller)],
    }
    if reasons:
        provenance["reason"] = [r for i, r in enumerate(reasons) if r not in reasons[:i]]
    return provenance


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
    return _owners(row for task_id in task_ids for row in _versions(session, task_id))


def owners_over_time_of(session: Session, groups: list[list[str]]) -> list[list[str]]:
    """``owners_over_time`` of each group of Task ids, their versions read in one query (per
    1,000 ids) for all the groups: the Tasks of a batch of writes."""
    ids = list(dict.fromkeys(i for group in groups for i in group))
    rows: dict[str, list[Any]] = {}
    for start in range(0, len(ids), 1000):  # within any database's limit of bound values
        for row in session.execute(
            _VERSION_ROWS.where(resource_versions.c.res_id.in_(ids[start : start + 1000]))
        ):
            rows.setdefault(row.res_id, []).append(row)
    return [_owners(row for i in group for row in rows.get(i, [])) for group in groups]


def _owners(rows: Iterable[Any]) -> list[str]:
    seen: dict[str, datetime] = {}
    for row in rows:
        owner = None if row.deleted else _owner(row.content)
        if owner and row.content.get("status") != "draft":
            seen.setdefault(owner, clock.from_db(row.last_updated))
    return sorted(seen, key=lambda o: seen[o])


_VERSION_ROWS = (
    select(
        resource_versions.c.res_id,
        resource_versions.c.version_id,
        resource_versions.c.last_updated,
        resource_versions.c.content,
        resource_versions.c.deleted,
    )
    .where(resource_versions.c.res_type == "Task")
    .order_by(resource_versions.c.res_id, resource_versions.c.version_id)
)


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
