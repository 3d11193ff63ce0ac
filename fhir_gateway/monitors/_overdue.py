"""Overdue referrals. A referral Task is overdue when

- it is ``requested`` and its partner has not accepted it within ``monitor_ack_hours`` of
  receiving it (``unacknowledged``; a re-routed or re-assigned referral's window starts when its
  new partner received it), or
- it is open (requested, accepted, in-progress, on-hold) after ``restriction.period.end``, the
  clinical deadline counted from the discharge and never reset (``past-deadline``);

and escalated when still so ``monitor_escalate_hours`` after it became overdue: a referral sent
after its deadline became overdue when it was sent, so it is never escalated as it goes out. Each condition
raises, once: a Flag on the Patient, a Communication to the plan's care team and one to the
Task's owner; the Task carries the tag ``overdue`` (and ``escalated``) while it lasts. The
partner's ``businessStatus`` and the Task's status are never touched. When the condition ends
(accepted, completed, cancelled, deadline moved) the Flag becomes inactive and the tags go.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.monitors._alerts import (
    Alert,
    care_team_of_plan,
    communication,
    flag,
    push_to_owner,
)
from fhir_gateway.monitors._codes import (
    ESCALATED,
    MONITOR_FLAGS,
    OVERDUE,
    PAST_DEADLINE,
    UNACKNOWLEDGED,
    coding,
)
from fhir_gateway.monitors._days import end_of_day, parse
from fhir_gateway.monitors._fhir import (
    create_once,
    labels_of,
    lock,
    read,
    ref,
    save,
    search,
    with_tags,
)
from fhir_gateway.monitors._ids import monitor_id
from fhir_gateway.settings import Settings
from fhir_gateway.store import repository as repo

__all__ = ["Overdue", "TaskResult", "conditions", "candidate_tasks", "check_task", "REASONS"]

REASONS = (UNACKNOWLEDGED, PAST_DEADLINE)
WATCHED = "requested,accepted,in-progress,on-hold"  # sent to a partner and not finished
_TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"


@dataclass(frozen=True, slots=True)
class Overdue:
    reason: str
    since: datetime  # when it became overdue
    escalated: bool


@dataclass(slots=True)
class TaskResult:
    flagged: int = 0
    escalated: int = 0
    resolved: int = 0


def is_referral(task: dict[str, Any]) -> bool:
    codes = {(c.get("system"), c.get("code")) for c in (task.get("code") or {}).get("coding", [])}
    return (_TASK_CODE, "fulfill") in codes or (ref(task, "focus") or "").startswith(
        "ServiceRequest/"
    )


def conditions(
    task: dict[str, Any],
    received: datetime | None,
    now: datetime,
    settings: Settings,
    zone: ZoneInfo,
) -> dict[str, Overdue]:
    """Which overdue conditions hold for ``task`` at ``now``, given when its owner ``received`` it (pure)."""
    status = task.get("status")
    if status not in WATCHED.split(",") or not is_referral(task):
        return {}
    escalate = timedelta(hours=settings.monitor_escalate_hours)
    found: dict[str, Overdue] = {}
    if status == "requested" and received is not None:
        since = received + timedelta(hours=settings.monitor_ack_hours)
        if now > since:
            found[UNACKNOWLEDGED] = Overdue(UNACKNOWLEDGED, since, now > since + escalate)
    deadline_text = ((task.get("restriction") or {}).get("period") or {}).get("end")
    deadline = end_of_day(deadline_text, zone) if deadline_text else None
    if deadline is not None and now > deadline:
        since = (
            max(deadline, received) if received is not None else deadline
        )  # late when sent: from then
        found[PAST_DEADLINE] = Overdue(PAST_DEADLINE, since, now > since + escalate)
    return found


def received_at(session: Session, task: dict[str, Any], zone: ZoneInfo) -> datetime | None:
    """When the Task's current owner received it: its version history (issue 6 keeps every
    version), else ``lastModified``/``authoredOn``."""
    from fhir_gateway.workflow import received_at as from_history

    return (
        from_history(session, task["id"])
        or parse(task.get("lastModified"), zone)
        or parse(task.get("authoredOn"), zone)
    )


def candidate_tasks(session: Session) -> list[str]:
    """Tasks worth a look: the open ones sent to a partner, and those still tagged overdue."""
    open_ids = [t["id"] for t in search(session, "Task", [("status", WATCHED)])]
    tagged = [t["id"] for t in search(session, "Task", [("_tag", f"{MONITOR_FLAGS}|{OVERDUE}")])]
    return list(dict.fromkeys(open_ids + tagged))


# -- one Task, in one transaction -----------------------------------------------------------------


def check_task(session: Session, settings: Settings, task_id: str) -> TaskResult:
    lock(session, "monitor", "Task", task_id)
    result = TaskResult()
    stored = repo.read(session, "Task", task_id)
    if stored is None or stored.deleted:
        return result
    task = stored.content
    zone = ZoneInfo(settings.default_sender_zone)
    now = clock.now()
    held = conditions(task, received_at(session, task, zone), now, settings, zone)
    task = _tag(session, task, held)  # first, so that what the owner is sent carries the tag
    for reason in REASONS:
        if reason in held:
            _raise(session, settings, task, held[reason], result)
        elif _resolve(session, monitor_id(OVERDUE, reason, f"Task/{task_id}")):
            result.resolved += 1
    return result


def _tag(session: Session, task: dict[str, Any], held: dict[str, Overdue]) -> dict[str, Any]:
    codes = {OVERDUE} if held else set()
    if any(c.escalated for c in held.values()):
        codes.add(ESCALATED)
    tagged = with_tags(task, MONITOR_FLAGS, codes)
    if tagged.get("meta", {}).get("tag") == task.get("meta", {}).get("tag"):
        return task
    save(session, tagged)
    return read(session, f"Task/{task['id']}") or tagged


def _context(
    session: Session, task: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    request = read(session, ref(task, "focus")) or {}
    plans = (read(session, b.get("reference")) for b in request.get("basedOn", []))
    return request, next((p for p in plans if p is not None), None)


def _alert(
    task: dict[str, Any], request: dict[str, Any], cond: Overdue, settings: Settings
) -> Alert:
    title = (request.get("code") or {}).get("text") or "referral"
    owner = ref(task, "owner") or "no partner (unassigned)"
    when = cond.since.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M UTC")
    if cond.reason == UNACKNOWLEDGED:
        what = f"not accepted within {settings.monitor_ack_hours:g} h of receiving it (overdue since {when})"
    else:
        what = f"not completed by its deadline (overdue since {when})"
    escalated = (
        f" ESCALATED: still overdue {settings.monitor_escalate_hours:g} h later."
        if cond.escalated
        else ""
    )
    codes = [OVERDUE, cond.reason] + ([ESCALATED] if cond.escalated else [])
    return Alert(
        codes=codes,
        patient=ref(task, "for") or "",
        category="admin",
        priority="PH" if cond.escalated else "PM",
        text=f"Referral '{title}' (Task/{task['id']}) to {owner}: {what}.{escalated}",
        details=[f"Task/{task['id']}"],
        labels=labels_of(task, request),  # its text names the request
    )


def _raise(
    session: Session, settings: Settings, task: dict[str, Any], cond: Overdue, result: TaskResult
) -> None:
    task_ref = f"Task/{task['id']}"
    request, plan = _context(session, task)
    alert = _alert(task, request, cond, settings)
    flag_id = monitor_id(OVERDUE, cond.reason, task_ref)
    if create_once(session, flag(flag_id, alert, settings.referral_requester)):
        result.flagged += 1
        _notify(session, settings, task, plan, alert, (OVERDUE, cond.reason, task_ref))
    else:
        _refresh(session, flag_id, alert)
    if cond.escalated and create_once(
        session, _escalation_marker(settings, task, plan, alert, cond)
    ):
        result.escalated += 1
        _notify_owner(session, settings, task, alert, (ESCALATED, cond.reason, task_ref))


def _escalation_marker(
    settings: Settings,
    task: dict[str, Any],
    plan: dict[str, Any] | None,
    alert: Alert,
    cond: Overdue,
) -> dict[str, Any]:
    """The escalation's Communication to the care team and the case manager: its id is the
    escalation's unique key."""
    task_ref = f"Task/{task['id']}"
    recipients = list(
        dict.fromkeys([*care_team_of_plan(plan, settings.case_manager), settings.case_manager])
    )
    comm_id = monitor_id(ESCALATED, cond.reason, task_ref, "care-team")
    flag_ref = f"Flag/{monitor_id(OVERDUE, cond.reason, task_ref)}"
    return communication(
        comm_id,
        alert,
        sender=settings.referral_requester,
        recipients=recipients,
        about=[task_ref, flag_ref],
    )


def _notify(
    session: Session,
    settings: Settings,
    task: dict[str, Any],
    plan: dict[str, Any] | None,
    alert: Alert,
    key: tuple[str, ...],
) -> None:
    flag_ref = f"Flag/{monitor_id(*key)}"
    team = communication(
        monitor_id(*key, "care-team"),
        alert,
        sender=settings.referral_requester,
        recipients=care_team_of_plan(plan, settings.case_manager),
        about=[f"Task/{task['id']}", flag_ref],
    )
    create_once(session, team)
    _notify_owner(session, settings, task, alert, key)


def _notify_owner(
    session: Session, settings: Settings, task: dict[str, Any], alert: Alert, key: tuple[str, ...]
) -> None:
    owner = ref(task, "owner")
    if owner is None:
        return  # unassigned: the care team's message is the only one
    doc = communication(
        monitor_id(*key, "owner"),
        alert,
        sender=settings.referral_requester,
        recipients=[owner],
        about=[f"Task/{task['id']}"],
    )
    if create_once(
        session, doc
    ):  # the gateway's record of the notice; the owner sees the tagged Task
        push_to_owner(session, owner, task, (settings.base_url or "").rstrip("/"))


def _refresh(session: Session, flag_id: str, alert: Alert) -> None:
    """An existing Flag follows its condition: active again if it had ended, raised to high
    priority and coded ``escalated`` once escalated. Its period.start stays the first notice."""
    current = read(session, f"Flag/{flag_id}")
    if current is None:
        return
    wanted = {
        **current,
        "status": "active",
        "code": {"coding": [coding(c) for c in alert.codes], "text": alert.text},
    }
    wanted["extension"] = [_priority(e, alert.priority) for e in current.get("extension", [])]
    wanted["period"] = {"start": current["period"]["start"]}
    if wanted != current:
        save(session, wanted)


def _priority(extension: dict[str, Any], priority: str) -> dict[str, Any]:
    from fhir_gateway.monitors._codes import FLAG_PRIORITY

    if extension.get("url") != FLAG_PRIORITY:
        return extension
    coding_ = dict(extension["valueCodeableConcept"]["coding"][0])
    coding_.update(
        code=priority,
        display={"PM": "Medium priority", "PH": "High priority"}.get(priority, priority),
    )
    return {"url": FLAG_PRIORITY, "valueCodeableConcept": {"coding": [coding_]}}


def _resolve(session: Session, flag_id: str) -> bool:
    current = read(session, f"Flag/{flag_id}")
    if current is None or current.get("status") != "active":
        return False
    period = {**current.get("period", {}), "end": clock.to_instant(clock.now())}
    save(session, {**current, "status": "inactive", "period": period})
    return True
