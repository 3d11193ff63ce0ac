"""Case-manager work items, raised the moment a gap shows, inside the write that shows it (a
consequence of every referral Task write and ServiceRequest activation, through ``fhir_gateway.hooks``,
and of every message the intake applies, through ``services.applied``). Each is a Flag on the Patient coded and tagged with
the monitors' code system, its reason in ``code.text``:

- ``unassigned``: a referral of an active ServiceRequest (an active plan), draft or requested, that
  has no owner; the text names the requirement no partner met. Inactive once a partner claims it,
  the case manager assigns it or it ends; the plan's activity ``progress`` notes both. Also (keyed
  on the ServiceRequest) a referral every eligible partner declined, put on hold by the workflow.
- ``late``: a referral that went to its partner (plan approved, re-routed, re-assigned) after its
  clinical deadline.
- ``deadline-at-risk``: a partner received it so close to its deadline that the acknowledgement
  window (``monitor_ack_hours``) ends after the deadline.
- ``rerouted``: a referral moved to a third partner (its second re-route) or more.
- ``no-encounter``: an A01 or A03 whose converted Bundle holds no Encounter (no PV1): no stay was
  recorded, so no care plan or readmission alert can follow from it.
- ``unable-to-contact``: a partner rejected or closed a referral because it could not reach the
  patient (``workflow.unable_to_contact``); the partner's write, with the partner's rights, is
  what raises it. Active until a person resolves it (a re-route does not find the patient).

Ids are deterministic (``monitor_id``): a re-sent message, a replay or a repeated write finds the
work item instead of raising a twin.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.careplans import UNASSIGNED_NOTE  # the words a new plan records too
from fhir_gateway.hooks import WriteEvent, settings_of
from fhir_gateway.monitors._alerts import Alert, flag
from fhir_gateway.monitors._codes import (
    DEADLINE_AT_RISK,
    LATE,
    NO_ENCOUNTER,
    REROUTED,
    UNABLE_TO_CONTACT,
    UNASSIGNED,
    coding,
)
from fhir_gateway.monitors._days import end_of_day
from fhir_gateway.monitors._fhir import create_once, labels_of, read, ref, save, search
from fhir_gateway.monitors._ids import monitor_id
from fhir_gateway.monitors._overdue import is_referral
from fhir_gateway.services.applied import MessageApplied
from fhir_gateway.settings import Settings
from fhir_gateway.store.repository import StoredResource
from fhir_gateway.workflow import unable_to_contact

__all__ = [
    "on_task",
    "on_request",
    "on_message",
    "raise_work_item",
    "end_work_item",
    "UNASSIGNED_NOTE",
    "ASSIGNED_NOTE",
]

ASSIGNED_NOTE = "Assigned: "
_GAP_STATUSES = frozenset({"draft", "requested"})
_VISIT_EVENTS = frozenset({"A01", "A03"})
_ENDED = {  # a referral the partner could not take on or carry out, in words
    "rejected": "was rejected",
    "failed": "was closed without being done",
    "cancelled": "was cancelled",
    "on-hold": "was put on hold",
}


def _settings(session: Session) -> Settings:
    return settings_of(session)  # the app's, which its rules carry


# -- raising and ending a work item --------------------------------------------------------------


def raise_work_item(session: Session, flag_id: str, alert: Alert, author: str) -> bool:
    """The Flag active with this text: created, or brought up to date (re-activated if it had
    ended); True when this call created it."""
    if create_once(session, flag(flag_id, alert, author)):
        return True
    current = read(session, f"Flag/{flag_id}") or {}
    wanted = {
        **current,
        "status": "active",
        "code": {"coding": [coding(c) for c in alert.codes], "text": alert.text},
        "period": {
            "start": (current.get("period") or {}).get("start", clock.to_instant(clock.now()))
        },
    }
    if wanted != current:
        save(session, wanted)
    return False


def end_work_item(session: Session, flag_id: str) -> bool:
    current = read(session, f"Flag/{flag_id}")
    if current is None or current.get("status") != "active":
        return False
    save(
        session,
        {
            **current,
            "status": "inactive",
            "period": {**current.get("period", {}), "end": clock.to_instant(clock.now())},
        },
    )
    return True


def _note_on_plans(session: Session, request_ref: str, text: str) -> None:
    """Append ``text`` to the progress of the activity for ``request_ref`` in each plan that has
    it, unless it is already the latest note there."""
    for plan in search(session, "CarePlan", [("activity-reference", request_ref)]):
        activities = []
        for activity in plan.get("activity", []):
            progress = activity.get("progress", [])
            if (activity.get("reference") or {}).get("reference") == request_ref and (
                not progress or progress[-1].get("text") != text
            ):
                activity = {
                    **activity,
                    "progress": [*progress, {"time": clock.to_instant(clock.now()), "text": text}],
                }
            activities.append(activity)
        if activities != plan.get("activity", []):
            save(session, {**plan, "activity": activities})


# -- referral Tasks ------------------------------------------------------------------------------


def _title(task: dict[str, Any], request: dict[str, Any]) -> str:
    return str((request.get("code") or {}).get("text") or task.get("description") or "referral")


def _alert(
    code: str, task: dict[str, Any], request: dict[str, Any], text: str, priority: str = "PM"
) -> Alert:
    details = [f"Task/{task['id']}"] + ([ref(task, "focus")] if ref(task, "focus") else [])
    return Alert(
        codes=[code],
        patient=ref(task, "for") or "",
        category="admin",
        priority=priority,
        text=f"Referral '{_title(task, request)}' (Task/{task['id']}) {text}",
        details=[d for d in details if d],
        labels=labels_of(task, request),
    )


def on_task(event: WriteEvent, stored: StoredResource | None) -> None:
    if (
        stored is None
        or stored.deleted
        or not is_referral(stored.content)
        or not ref(stored.content, "for")
    ):
        return
    before = event.before.content if event.before is not None and not event.before.deleted else None
    task, settings = stored.content, _settings(event.session)
    _unassigned(event.session, settings, before, task)
    _declined_by_all(event.session, settings, before, task)
    if _received_now(before, task):
        _deadline(event.session, settings, before, task)
    _unreachable(event.session, settings, before, task)
    if (
        ref(task, "owner")
        and ref(task, "owner") != ref(before, "owner")
        and task.get("status") != "draft"
    ):
        _reroutes(event.session, settings, task)


def on_request(event: WriteEvent, stored: StoredResource | None) -> None:
    """A ServiceRequest that became active (its plan approved): its Tasks without an owner are
    gaps from now on, also those that stay draft (waiting for consent) and so are not written."""
    if stored is None or stored.deleted or stored.content.get("status") != "active":
        return
    if event.before is not None and event.before.content.get("status") == "active":
        return
    for task in search(event.session, "Task", [("focus", stored.relative)]):
        if is_referral(task) and ref(task, "for"):
            _unassigned(event.session, _settings(event.session), None, task)


def _received_now(before: dict[str, Any] | None, task: dict[str, Any]) -> bool:
    """The write that sends the Task to a partner (or to any partner, unassigned): it became
    requested, or a requested Task changed hands."""
    if task.get("status") != "requested":
        return False
    return (
        before is None
        or before.get("status") != "requested"
        or ref(before, "owner") != ref(task, "owner")
    )


def _unassigned(
    session: Session, settings: Settings, before: dict[str, Any] | None, task: dict[str, Any]
) -> None:
    flag_id = monitor_id(UNASSIGNED, f"Task/{task['id']}")
    request_ref = ref(task, "focus") or ""
    owner = ref(task, "owner")
    if owner is None and task.get("status") in _GAP_STATUSES:
        if (read(session, f"Flag/{flag_id}") or {}).get("status") == "active":
            return  # raised already: a re-send or another write of the same gap
        request = read(session, request_ref) or {}
        if request.get("status") != "active":
            return  # a plan still in review, or a referral withdrawn: nobody is waiting yet
        from fhir_gateway.workflow import no_partner_reason

        reason = no_partner_reason(session, request)
        raise_work_item(
            session,
            flag_id,
            _alert(
                UNASSIGNED,
                task,
                request,
                f"has no partner: {reason}. Assign it to a "
                "partner or arrange the service with the patient.",
            ),
            settings.referral_requester,
        )
        _note_on_plans(session, request_ref, UNASSIGNED_NOTE + reason)
    elif end_work_item(session, flag_id) and owner is not None:
        name = (task.get("owner") or {}).get("display") or owner
        _note_on_plans(session, request_ref, f"{ASSIGNED_NOTE}{name} ({owner})")


def _declined_by_all(
    session: Session, settings: Settings, before: dict[str, Any] | None, task: dict[str, Any]
) -> None:
    """Every partner that was offered the referral declined it and none is left (the workflow put
    its ServiceRequest on hold): unassigned, at the referral's level, until a Task of it has an
    owner again."""
    from fhir_gateway.workflow import OPEN, owners_over_time

    request_ref = ref(task, "focus") or ""
    flag_id = monitor_id(UNASSIGNED, request_ref)
    if task.get("status") in OPEN and ref(task, "owner"):
        end_work_item(session, flag_id)
        return
    if task.get("status") != "rejected" or (before or {}).get("status") == "rejected":
        return
    request = read(session, request_ref) or {}
    tasks = search(session, "Task", [("focus", request_ref)])
    if request.get("status") != "on-hold" or any(t.get("status") in OPEN for t in tasks):
        return
    declined = owners_over_time(session, [t["id"] for t in tasks])
    reason = f"every eligible partner declined it ({', '.join(declined)}); none is left to try"
    raise_work_item(
        session,
        flag_id,
        _alert(UNASSIGNED, task, request, f"has no partner: {reason}. Its request is on hold."),
        settings.referral_requester,
    )
    _note_on_plans(session, request_ref, UNASSIGNED_NOTE + reason)


def _deadline(
    session: Session, settings: Settings, before: dict[str, Any] | None, task: dict[str, Any]
) -> None:
    text = ((task.get("restriction") or {}).get("period") or {}).get("end")
    zone = ZoneInfo(settings.default_sender_zone)
    deadline = end_of_day(text, zone) if text else None
    if deadline is None:
        return
    now = clock.now()
    request = read(session, ref(task, "focus")) or {}
    task_ref = f"Task/{task['id']}"
    owner = (
        (task.get("owner") or {}).get("display") or ref(task, "owner") or "no partner (unassigned)"
    )
    if now > deadline:
        how = (
            "went out when its plan was approved, after its clinical deadline"
            if before is not None and before.get("status") == "draft"
            else "was re-routed after its clinical deadline"
            if task.get("partOf")
            else "went to its partner after its clinical deadline"
        )
        raise_work_item(
            session,
            monitor_id(LATE, task_ref),
            _alert(
                LATE,
                task,
                request,
                f"to {owner} {how} ({_when(deadline)}): late at sending, sent at once with "
                "priority urgent. Contact the patient and the partner now.",
                "PH",
            ),
            settings.referral_requester,
        )
        return
    window_end = now + timedelta(hours=settings.monitor_ack_hours)
    if ref(task, "owner") and window_end > deadline:
        raise_work_item(
            session,
            monitor_id(DEADLINE_AT_RISK, task_ref),
            _alert(
                DEADLINE_AT_RISK,
                task,
                request,
                f"reached {owner} on {_when(now)}; its {settings.monitor_ack_hours:g} h "
                f"acknowledgement window ends {_when(window_end)}, after the clinical deadline ({_when(deadline)}). "
                "Make sure the partner takes it in time.",
            ),
            settings.referral_requester,
        )


def _reroutes(session: Session, settings: Settings, task: dict[str, Any]) -> None:
    """A referral that reached its third partner (re-routed twice) or more."""
    from fhir_gateway.workflow import owners_over_time

    request_ref = ref(task, "focus")
    if request_ref is None:
        return
    ids = list(
        dict.fromkeys(
            [*(t["id"] for t in search(session, "Task", [("focus", request_ref)])), task["id"]]
        )
    )
    owners = owners_over_time(session, ids)
    if len(owners) < 3:
        return
    request = read(session, request_ref) or {}
    raise_work_item(
        session,
        monitor_id(REROUTED, request_ref),
        _alert(
            REROUTED,
            task,
            request,
            f"has been re-routed {len(owners) - 1} times: {' → '.join(owners)}. "
            "Follow it up with the patient and the partners.",
        ),
        settings.referral_requester,
    )


def _unreachable(
    session: Session, settings: Settings, before: dict[str, Any] | None, task: dict[str, Any]
) -> None:
    """The partner says it could not contact the patient, in this write (a new status or reason)."""
    if not unable_to_contact(task):
        return
    if (
        before is not None
        and unable_to_contact(before)
        and before.get("status") == task.get("status")
    ):
        return  # said already
    request = read(session, ref(task, "focus")) or {}
    owner = ref(task, "owner")
    partner = (
        (task.get("owner") or {}).get("display")
        or (read(session, owner) or {}).get("name")
        or owner
        or "The partner"
    )
    said = (task.get("statusReason") or {}).get("text") or "Unable to contact the patient"
    how = _ENDED.get(str(task.get("status")), f"is {task.get('status')}")
    raise_work_item(
        session,
        monitor_id(UNABLE_TO_CONTACT, f"Task/{task['id']}"),
        _alert(
            UNABLE_TO_CONTACT,
            task,
            request,
            f"{how}: {partner} could not contact the patient ({said}). "
            "Reach the patient, then decide with them what next.",
            "PH",
        ),
        settings.referral_requester,
    )


def _when(value: datetime) -> str:
    return value.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M UTC")


# -- messages ------------------------------------------------------------------------------------


def on_message(session: Session, message: MessageApplied) -> None:
    """An A01 or A03 that recorded no stay (no PV1: no Encounter in its Bundle)."""
    if message.source != "hl7v2" or message.event not in _VISIT_EVENTS or message.has("Encounter"):
        return
    patient = message.first("Patient")
    if patient is None:
        return  # a Flag needs a subject; the inbox keeps the message and its answer
    what = "discharge" if message.event == "A03" else "admission"
    alert = Alert(
        codes=[NO_ENCOUNTER],
        patient=patient,
        category="admin",
        priority="PH" if message.event == "A03" else "PM",
        text=(
            f"ADT^{message.event} {message.control_id or ''} from {message.sender or 'an unknown sender'} "
            f"(inbox message {message.message_id}) has no PV1 segment: no {what} was recorded, so no care "
            "plan or readmission alert follows from it. Check the stay with the sending facility."
        ),
        details=[patient],
        labels=labels_of(read(session, patient)),
    )
    key = message.control_id or str(message.message_id)
    raise_work_item(
        session,
        monitor_id(NO_ENCOUNTER, message.sender or "", key),
        alert,
        _settings(session).referral_requester,
    )
