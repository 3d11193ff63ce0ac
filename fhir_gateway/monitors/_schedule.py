"""Running the scheduled monitors (overdue referrals, family messages): ``run_all`` once, or
``run_due`` on a schedule shared by every worker.

Safe with several workers on PostgreSQL: the schedule row is claimed with one compare-and-set
(``UPDATE … WHERE due_at <= now``), so one worker runs each interval; each Task or CareTeam is then
checked in its own transaction under a transaction-level advisory lock, and every alert has a
deterministic id (its primary key), so even overlapping runs raise each alert once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fhir_gateway import clock, hooks
from fhir_gateway.errors import Conflict
from fhir_gateway.monitors._codes import codesystem
from fhir_gateway.monitors._family import candidate_teams, check_team
from fhir_gateway.monitors._fhir import save
from fhir_gateway.monitors._overdue import candidate_tasks, check_task
from fhir_gateway.observability.metrics import record_monitor_run
from fhir_gateway.settings import Settings
from fhir_gateway.store.db import Database
from fhir_gateway.store.monitor_tables import monitor_runs
from fhir_gateway.workflow import outcome_codesystems

__all__ = [
    "RunSummary",
    "JOB",
    "ScheduledJob",
    "seed",
    "run_all",
    "run_due",
    "run_forever",
    "last_run",
]

log = logging.getLogger("fhir_gateway.monitors")
JOB = "monitors"
T = TypeVar("T")
_RETRIES = 3
# What the engines above the monitors (adherence, …) run on the same schedule: the ``scheduled``
# hook point of the database's rules, by name, in order; each returns how many patients it checked.
ScheduledJob = Callable[[Database, Settings], int]


def _scheduled(database: Database) -> list[tuple[str, ScheduledJob]]:
    rules = database.rules
    return rules.scheduled_jobs() if isinstance(rules, hooks.Rules) else []


@dataclass(slots=True)
class RunSummary:
    tasks_checked: int = 0
    flagged: int = 0
    escalated: int = 0
    resolved: int = 0
    teams_checked: int = 0
    family_messages: int = 0
    patients_checked: int = 0  # by the rules' scheduled jobs
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def seed(session: Session) -> None:
    """The CodeSystem the monitors' tags and codes come from, and the referral outcome codes the
    work items read (unchanged: no new version). The FUH Measure is served by ``GET Measure/fuh``
    (the store does not hold the Measure type)."""
    for system in (codesystem(), *outcome_codesystems()):
        save(session, system)


def _retry(database: Database, fn: Callable[..., T], *args: Any) -> T:
    for attempt in range(_RETRIES):
        try:
            return database.write(fn, *args)
        except Conflict:  # another worker wrote the same alert a moment ago: look again
            if attempt == _RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def run_all(database: Database, settings: Settings) -> RunSummary:
    """Every scheduled monitor once, now."""
    summary = RunSummary()
    _retry(database, seed)  # two workers seeding at once: the loser finds it stored
    for task_id in database.read(candidate_tasks):
        summary.tasks_checked += 1
        try:
            result = _retry(database, check_task, settings, task_id)
        except Exception:  # one bad Task must not hide the others' alerts
            log.exception("monitor: Task/%s not checked", task_id)
            summary.errors += 1
            continue
        summary.flagged += result.flagged
        summary.escalated += result.escalated
        summary.resolved += result.resolved
    for team_id in database.read(candidate_teams):
        summary.teams_checked += 1
        try:
            summary.family_messages += _retry(database, check_team, settings, team_id)
        except Exception:
            log.exception("monitor: CareTeam/%s not checked", team_id)
            summary.errors += 1
    for name, job in _scheduled(database):
        try:
            summary.patients_checked += job(database, settings)
        except Exception:  # one engine failing must not hide the others' work
            log.exception("monitor: scheduled job %s failed", name)
            summary.errors += 1
    record_monitor_run(summary.as_dict())  # metrics: runs and findings by kind
    return summary


# -- the shared schedule --------------------------------------------------------------------------


def _claim(session: Session, interval: float, worker: str) -> bool:
    now = clock.to_db(clock.now())
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        dialect_insert(monitor_runs).values(name=JOB, due_at=now).on_conflict_do_nothing()
    )
    claimed = session.execute(
        update(monitor_runs)
        .where(monitor_runs.c.name == JOB, monitor_runs.c.due_at <= now)
        .values(due_at=now + timedelta(seconds=interval), started_at=now, worker=worker)
    )
    return cast(CursorResult[Any], claimed).rowcount == 1


def _finish(session: Session, result: dict[str, int] | None, error: str | None) -> None:
    session.execute(
        update(monitor_runs)
        .where(monitor_runs.c.name == JOB)
        .values(finished_at=clock.to_db(clock.now()), result=result, error=error)
    )


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_due(
    database: Database, settings: Settings, *, worker: str | None = None
) -> RunSummary | None:
    """Run the monitors if their interval has passed and no other worker took this turn; the
    function a worker loop calls as often as it likes. None: not this worker's turn."""
    if not database.write(_claim, settings.monitor_interval, worker or worker_name()):
        return None
    try:
        summary = run_all(database, settings)
    except Exception as exc:
        record_monitor_run(None)
        database.write(_finish, None, f"{exc.__class__.__name__}: {exc}"[:500])
        raise
    database.write(_finish, summary.as_dict(), None)
    return summary


def run_forever(
    database: Database, settings: Settings, stop: threading.Event, *, poll: float = 5.0
) -> None:
    """``fhir-gateway monitors run``: look every ``poll`` seconds; run when due."""
    name = worker_name()
    log.info("monitors %s started (every %g s)", name, settings.monitor_interval)
    while not stop.is_set():
        try:
            summary = run_due(database, settings, worker=name)
            if summary is not None:
                log.info("monitors ran: %s", summary.as_dict())
        except Exception:  # the database away for a moment: try again next time
            log.exception("monitor run failed")
        stop.wait(min(poll, settings.monitor_interval))


def last_run(session: Session) -> dict[str, Any] | None:
    row = session.execute(select(monitor_runs).where(monitor_runs.c.name == JOB)).mappings().first()
    return dict(row) if row is not None else None
