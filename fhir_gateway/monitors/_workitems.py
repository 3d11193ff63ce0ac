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

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.careplans import UNASSIGNED_NOTE  # the words a new plan records too
from fhir_gateway.context import SYSTEM
from fhir_gateway.fhir.references import Reference
from fhir_gateway.hooks import WriteEvent, Written, settings_of
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
from fhir_gateway.monitors._fhir import (
    chunks,
    create_once,
    labels_of,
    read,
    ref,
    save,
    search,
)
from fhir_gateway.monitors._ids import monitor_id
from fhir_gateway.monitors._overdue import is_referral
from fhir_gateway.services import resources as svc
from fhir_gateway.services.applied import MessageApplied
from fhir_gateway.settings import Settings
from fhir_gateway.store import repository as repo
from fhir_gateway.workflow import unable_to_contact

__all__ = [
    "on_tasks",
    "on_requests",
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


class _Reads:
    """What the rules of a batch of writes read, fetched in one query: the first reads are served
    from it until one of the rules writes (a work item, a note), then from the database again."""

    def __init__(self, session: Session, references: Iterable[str | None] = ()) -> None:
        self.session = session
        keys: dict[str, tuple[str, str]] = {}
        for reference in dict.fromkeys(r for r in references if r):
            parsed = Reference.parse(reference)
            if parsed is not None and parsed.type and parsed.version is None:
                keys[reference] = (parsed.type, parsed.id)
        found = repo.read_keys(session, list(dict.fromkeys(keys.values()))) if keys else {}
        self.known: dict[str, dict[str, Any] | None] | None = {}
        for reference, key in keys.items():
            stored = found.get(key)
            self.known[reference] = None if stored is None or stored.deleted else stored.content

    def read(self, reference: str | None) -> dict[str, Any] | None:
        if self.known is not None and reference in self.known:
            return self.known[reference]
        return read(self.session, reference)

    def stale(self) -> None:
        self.known = None


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


def raise_work_items(session: Session, items: list[tuple[str, Alert]], author: str) -> None:
    """``raise_work_item`` of each, the work items that do not exist yet created together (one
    read, one write per table, their rules once)."""
    docs: dict[str, dict[str, Any]] = {}
    for flag_id, alert in items:
        docs.setdefault(flag_id, flag(flag_id, alert, author))
    found = repo.read_keys(session, [("Flag", flag_id) for flag_id in docs])
    new = [
        doc
        for flag_id, doc in docs.items()
        if found.get(("Flag", flag_id)) is None or found[("Flag", flag_id)].deleted
    ]
    if new:
        svc.update_many(session, new, SYSTEM)
    created = {doc["id"] for doc in new}
    for flag_id, alert in items:  # the others brought up to date, as one by one
        if flag_id in created:
            created.discard(flag_id)
        else:
            raise_work_item(session, flag_id, alert, author)


def end_work_item(session: Session, flag_id: str) -> bool:
    return _end_work_item(session, flag_id, _Reads(session))


def _end_work_item(session: Session, flag_id: str, reads: _Reads) -> bool:
    current = reads.read(f"Flag/{flag_id}")
    if current is None or current.get("status") != "active":
        return False
    reads.stale()
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


def on_tasks(written: list[Written]) -> None:
    """The referral Tasks of a batch of writes (a plan's, or one): what each read once for all."""
    changes = [
        (_before(event), stored.content)
        for event, stored in written
        if stored is not None
        and not stored.deleted
        and is_referral(stored.content)
        and ref(stored.content, "for")
    ]
    if not changes:
        return
    session = written[0][0].session
    settings = _settings(session)
    reads = _Reads(session, _wanted(changes))
    for before, task in changes:
        _unassigned(session, settings, before, task, reads)
        _declined_by_all(session, settings, before, task, reads)
    deadlines = [c for c in changes if _received_now(*c)]
    if deadlines:
        _deadlines(session, settings, deadlines, reads)
    for before, task in changes:
        _unreachable(session, settings, before, task)
    moved = [
        task
        for before, task in changes
        if ref(task, "owner")
        and ref(task, "owner") != ref(before, "owner")
        and task.get("status") != "draft"
    ]
    if moved:
        _reroutes(session, settings, moved, reads)


def _before(event: WriteEvent) -> dict[str, Any] | None:
    return event.before.content if event.before is not None and not event.before.deleted else None


def _wanted(changes: list[tuple[dict[str, Any] | None, dict[str, Any]]]) -> list[str | None]:
    """What the Task rules read: each Task's own work item, its request and the request's item."""
    wanted: list[str | None] = []
    for _before_task, task in changes:
        request_ref = ref(task, "focus") or ""
        wanted += [
            "Flag/" + monitor_id(UNASSIGNED, "Task/" + task["id"]),
            request_ref,
            f"Flag/{monitor_id(UNASSIGNED, request_ref)}",
        ]
    return wanted


def on_requests(written: list[Written]) -> None:
    """ServiceRequests that became active (their plan approved): their Tasks without an owner are
    gaps from now on, also those that stay draft (waiting for consent) and so are not written.
    One Task search for all the requests of a batch."""
    activated = [
        stored.relative
        for event, stored in written
        if stored is not None
        and not stored.deleted
        and stored.content.get("status") == "active"
        and not (event.before is not None and event.before.content.get("status") == "active")
    ]
    if not activated:
        return
    session = written[0][0].session
    by_request: dict[str, list[dict[str, Any]]] = {}
    for chunk in chunks(activated):
        for task in search(session, "Task", [("focus", ",".join(chunk))]):
            by_request.setdefault(ref(task, "focus") or "", []).append(task)
    for request_ref in dict.fromkeys(activated):  # in the order of the writes, as one by one
        for task in by_request.get(request_ref, []):
            if is_referral(task) and ref(task, "for"):
                _unassigned(session, _settings(session), None, task, _Reads(session))


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
    session: Session,
    settings: Settings,
    before: dict[str, Any] | None,
    task: dict[str, Any],
    reads: _Reads,
) -> None:
    flag_id = monitor_id(UNASSIGNED, f"Task/{task['id']}")
    request_ref = ref(task, "focus") or ""
    owner = ref(task, "owner")
    if owner is None and task.get("status") in _GAP_STATUSES:
        if (reads.read(f"Flag/{flag_id}") or {}).get("status") == "active":
            return  # raised already: a re-send or another write of the same gap
        request = reads.read(request_ref) or {}
        if request.get("status") != "active":
            return  # a plan still in review, or a referral withdrawn: nobody is waiting yet
        from fhir_gateway.workflow import no_partner_reason

        reason = no_partner_reason(session, request)
        reads.stale()
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
    elif _end_work_item(session, flag_id, reads) and owner is not None:
        name = (task.get("owner") or {}).get("display") or owner
        _note_on_plans(session, request_ref, f"{ASSIGNED_NOTE}{name} ({owner})")


def _declined_by_all(
    session: Session,
    settings: Settings,
    before: dict[str, Any] | None,
    task: dict[str, Any],
    reads: _Reads,
) -> None:
    """Every partner that was offered the referral declined it and none is left (the workflow put
    its ServiceRequest on hold): unassigned, at the referral's level, until a Task of it has an
    owner again."""
    from fhir_gateway.workflow import OPEN, owners_over_time

    request_ref = ref(task, "focus") or ""
    flag_id = monitor_id(UNASSIGNED, request_ref)
    if task.get("status") in OPEN and ref(task, "owner"):
        _end_work_item(session, flag_id, reads)
        return
    if task.get("status") != "rejected" or (before or {}).get("status") == "rejected":
        return
    request = reads.read(request_ref) or {}
    reads.stale()
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


def _deadlines(
    session: Session,
    settings: Settings,
    changes: list[tuple[dict[str, Any] | None, dict[str, Any]]],
    reads: _Reads,
) -> None:
    """The Tasks that reached a partner in this batch, against their clinical deadlines: the work
    items they call for raised together."""
    items = [item for before, task in changes if (item := _deadline(settings, before, task, reads))]
    if items:
        raise_work_items(session, items, settings.referral_requester)


def _deadline(
    settings: Settings, before: dict[str, Any] | None, task: dict[str, Any], reads: _Reads
) -> tuple[str, Alert] | None:
    text = ((task.get("restriction") or {}).get("period") or {}).get("end")
    zone = ZoneInfo(settings.default_sender_zone)
    deadline = end_of_day(text, zone) if text else None
    if deadline is None:
        return None
    now = clock.now()
    request = reads.read(ref(task, "focus")) or {}
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
        return (
            monitor_id(LATE, task_ref),
            _alert(
                LATE,
                task,
                request,
                f"to {owner} {how} ({_when(deadline)}): late at sending, sent at once with "
                "priority urgent. Contact the patient and the partner now.",
                "PH",
            ),
        )
    window_end = now + timedelta(hours=settings.monitor_ack_hours)
    if ref(task, "owner") and window_end > deadline:
        return (
            monitor_id(DEADLINE_AT_RISK, task_ref),
            _alert(
                DEADLINE_AT_RISK,
                task,
                request,
                f"reached {owner} on {_when(now)}; its {settings.monitor_ack_hours:g} h "
                f"acknowledgement window ends {_when(window_end)}, after the clinical deadline ({_when(deadline)}). "
                "Make sure the partner takes it in time.",
            ),
        )
    return None


def _reroutes(
    session: Session, settings: Settings, tasks: list[dict[str, Any]], reads: _Reads
) -> None:
    """Referrals that reached their third partner (re-routed twice) or more: for the Tasks of a
    batch that changed hands, one Task search and one read of their versions."""
    from fhir_gateway.workflow import owners_over_time_of

    tasks = [t for t in tasks if ref(t, "focus")]
    siblings: dict[str, list[str]] = {}
    for chunk in chunks([str(ref(t, "focus")) for t in tasks]):
        for sibling in search(session, "Task", [("focus", ",".join(chunk))]):
            siblings.setdefault(ref(sibling, "focus") or "", []).append(sibling["id"])
    groups = [
        list(dict.fromkeys([*siblings.get(str(ref(t, "focus")), []), t["id"]])) for t in tasks
    ]
    for task, owners in zip(tasks, owners_over_time_of(session, groups), strict=True):
        if len(owners) < 3:
            continue
        request_ref = str(ref(task, "focus"))
        request = reads.read(request_ref) or {}
        reads.stale()
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
