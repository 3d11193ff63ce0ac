"""Plan review: a draft plan on one page, and what a case manager does with it.

    review(session, caller, "cp1", shown)            # the page's read model (None: not visible)
    approve(session, caller, "cp1", version)          # draft → active, as PUT /CarePlan/cp1 does
    decline / drop / add / choose_partner / move_due  # each one or a few writes as the user

Every change is a write of the user's Caller through ``services.resources`` (If-Match with the
version the page showed where a stale page would do harm), so the engine's approval rule, the
referral state machine and its rights, the monitors' work items and the audit trail apply exactly
as they do to the same change made through the API. Partners are offered by the routing's own
eligibility test (``workflow.partner_choices``), activities by the engine's templates
(``careplans.template_choices`` / ``new_activity``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import careplans, clock, workflow
from fhir_gateway.context import Caller
from fhir_gateway.errors import BusinessRule, InvalidRequest, NotFound
from fhir_gateway.fhir.references import Reference
from fhir_gateway.services import resources
from fhir_gateway.settings import Settings
from fhir_gateway.store.search import match_ids
from fhir_gateway.web._caseload import case_manager_of, case_managers, practitioner_ref
from fhir_gateway.web._display import Display, Names, plan_state, task_state

__all__ = [
    "Author",
    "ActivityView",
    "PlanReview",
    "review",
    "approve",
    "decline",
    "drop",
    "add",
    "choose_partner",
    "move_due",
    "referral_partner",
    "ReferralPartner",
    "MAX_REASON",
]

MAX_REASON = 500
_EDITABLE_TASK = frozenset({"draft", "requested"})
_DEAD_REQUEST = frozenset({"revoked", "entered-in-error", "completed"})
_AWAITING = "awaiting-consent"


@dataclass(frozen=True, slots=True)
class Author:
    """Who makes a change, as the notes it leaves name them."""

    reference: str  # Practitioner/id
    name: str

    def note(self, text: str) -> dict[str, Any]:
        return {
            "authorReference": {"reference": self.reference, "display": self.name},
            "time": clock.to_instant(clock.now()),
            "text": text,
        }


@dataclass(slots=True)
class ActivityView:
    request_id: str
    service: str
    request_status: str
    task_id: str | None = None
    task_version: int = 0
    task_status: str | None = None
    state: str = ""
    partner: str | None = None
    partner_ref: str | None = None
    no_partner: str | None = None  # why it has none (the engine's and the monitors' words)
    awaiting_consent: bool = False
    deadline: str = ""  # in words
    deadline_value: str = ""  # YYYY-MM-DD, for the date field
    notes: list[str] = field(default_factory=list)
    ended_why: str | None = None  # a cancelled referral's statusReason (dropped at review, …)
    choices: list[workflow.PartnerChoice] = field(default_factory=list)

    @property
    def dropped(self) -> bool:
        return self.request_status in _DEAD_REQUEST or self.task_status == "cancelled"


@dataclass(slots=True)
class PlanReview:
    plan_id: str
    version: int
    status: str
    state: str
    title: str
    patient_id: str
    patient: str
    made: str
    case_manager: str | None
    case_manager_user: str | None
    goals: list[tuple[str, str]]  # (what, due in words)
    activities: list[ActivityView]
    templates: list[careplans.TemplateChoice]
    notes: list[str]
    case_managers: list[tuple[str, str]]  # (username, shown name)

    @property
    def editable(self) -> bool:
        return self.status == "draft"


# -- reading -----------------------------------------------------------------------------------------


def _served(session: Session, caller: Caller, res_type: str, res_id: str) -> dict[str, Any] | None:
    try:
        return dict(resources.read_served(session, res_type, res_id, caller).content)
    except NotFound:
        return None


def _plan(session: Session, caller: Caller, plan_id: str) -> dict[str, Any]:
    plan = _served(session, caller, "CarePlan", plan_id)
    if plan is None:
        raise NotFound(f"There is no care plan {plan_id}.")
    return plan


def _version(session: Session, caller: Caller, res_type: str, res_id: str) -> int:
    return resources.read(session, res_type, res_id, caller).version_id


def review(session: Session, caller: Caller, plan_id: str, shown: Display) -> PlanReview | None:
    plan = _served(session, caller, "CarePlan", plan_id)
    if plan is None:
        return None
    names = Names(session, caller)
    patient = (plan.get("subject") or {}).get("reference")
    team = names.resource(next(iter(plan.get("careTeam") or []), None))
    keeper = case_manager_of(team)
    users = case_managers(session)
    editable = plan.get("status") == "draft"
    activities = [
        _activity(session, caller, names, shown, ref, editable) for ref in _request_refs(plan)
    ]
    progress = _progress(plan)
    for activity in activities:
        if activity.partner is None and not activity.dropped:
            activity.no_partner = _no_partner(
                progress.get(f"ServiceRequest/{activity.request_id}", [])
            )
    return PlanReview(
        plan_id=plan_id,
        version=_version(session, caller, "CarePlan", plan_id),
        status=str(plan.get("status")),
        state=plan_state(plan.get("status")),
        title=str(plan.get("title") or "Care plan"),
        patient_id=Reference.id_of(patient, "Patient") or "",
        patient=names.of(patient, missing="(no name)"),
        made=shown.when(plan.get("created") or (plan.get("period") or {}).get("start")),
        case_manager=names.of(keeper) if keeper else None,
        case_manager_user=next(
            (u.username for u in users if practitioner_ref(u.username) == keeper), None
        ),
        goals=[_goal(names.resource(g), shown) for g in plan.get("goal") or []],
        activities=activities,
        templates=careplans.template_choices(session, plan) if editable else [],
        notes=[str(n.get("text")) for n in plan.get("note") or [] if n.get("text")],
        case_managers=[
            (u.username, names.of(practitioner_ref(u.username), missing=u.username)) for u in users
        ],
    )


def _request_refs(plan: dict[str, Any]) -> list[str]:
    refs = [(a.get("reference") or {}).get("reference") or "" for a in plan.get("activity") or []]
    return [r for r in refs if r.startswith("ServiceRequest/")]


def _goal(goal: dict[str, Any] | None, shown: Display) -> tuple[str, str]:
    goal = goal or {}
    due = next((t.get("dueDate") for t in goal.get("target") or [] if t.get("dueDate")), None)
    return (
        str((goal.get("description") or {}).get("text") or "A goal"),
        shown.day(due) if due else "no date",
    )


def _no_partner(progress: list[dict[str, Any]]) -> str | None:
    """Why the activity has no partner, as the engine or the monitors noted it last."""
    for note in reversed(progress):
        text = str(note.get("text") or "")
        if text.startswith(careplans.UNASSIGNED_NOTE):
            return text[len(careplans.UNASSIGNED_NOTE) :]
    return None


def _activity(
    session: Session,
    caller: Caller,
    names: Names,
    shown: Display,
    request_ref: str,
    editable: bool,
) -> ActivityView:
    request = names.resource(request_ref) or {}
    code = request.get("code") or {}
    view = ActivityView(
        request_id=Reference.id_of(request_ref) or "",
        service=str(code.get("text") or "Referral"),
        request_status=str(request.get("status") or "unknown"),
    )
    task_ids = match_ids(session, "Task", [("focus", request_ref)], caller=caller)
    stored = [resources.read_served(session, "Task", i, caller) for i in task_ids]
    live = sorted(stored, key=lambda s: (s.content.get("status") == "cancelled", s.last_updated))
    if live:
        task = live[0].content
        view.task_id, view.task_version = live[0].res_id, live[0].version_id
        view.task_status = str(task.get("status"))
        owner = (task.get("owner") or {}).get("reference")
        view.partner_ref = owner
        view.partner = names.of(task.get("owner")) if owner else None
        view.awaiting_consent = _AWAITING in {
            c.get("code") for c in (task.get("businessStatus") or {}).get("coding") or []
        }
        end = ((task.get("restriction") or {}).get("period") or {}).get("end")
        view.deadline = shown.when(end) if end else "no deadline"
        local = shown.local(end)
        view.deadline_value = local.date().isoformat() if local else ""
        view.notes = [str(n.get("text")) for n in task.get("note") or [] if n.get("text")]
        view.ended_why = (task.get("statusReason") or {}).get("text")
        view.state = task_state(view.task_status)
    if editable and view.task_status in _EDITABLE_TASK:
        view.choices = workflow.partner_choices(session, request)
    return view


def _progress(plan: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each activity's progress notes: the plan's own record (why one has no partner, …)."""
    return {
        (a.get("reference") or {}).get("reference") or "": a.get("progress") or []
        for a in plan.get("activity") or []
    }


# -- changing ----------------------------------------------------------------------------------------


def _reason(text: str, what: str) -> str:
    reason = " ".join(text.split())
    if not reason:
        raise InvalidRequest(f"Say why you {what}.")
    if len(reason) > MAX_REASON:
        raise InvalidRequest(f"Keep the reason under {MAX_REASON} characters.")
    return reason


def _in_review(plan: dict[str, Any]) -> None:
    if plan.get("status") != "draft":
        raise BusinessRule(
            "This plan is no longer in review (it was approved or declined meanwhile); "
            "reload it to see where it stands."
        )


def _own_activity(plan: dict[str, Any], request_id: str) -> str:
    ref = f"ServiceRequest/{request_id}"
    if ref not in _request_refs(plan):
        raise NotFound(f"This plan has no activity {request_id}.")
    return ref


def approve(session: Session, caller: Caller, plan_id: str, version: int) -> dict[str, int]:
    """The plan becomes active (the engine then sends its referrals); what happened to them."""
    plan = _plan(session, caller, plan_id)
    _in_review(plan)
    resources.update(
        session, "CarePlan", plan_id, {**plan, "status": "active"}, caller, if_match=version
    )
    outcome = {"sent": 0, "open": 0, "consent": 0}
    for ref in _request_refs(plan):
        for task_id in match_ids(session, "Task", [("focus", ref)], caller=caller):
            task = resources.read(session, "Task", task_id, caller).content
            if task.get("status") == "requested":
                outcome["sent" if task.get("owner") else "open"] += 1
            elif task.get("status") == "draft":
                outcome["consent"] += 1
    return outcome


def decline(
    session: Session, caller: Caller, plan_id: str, version: int, reason: str, author: Author
) -> None:
    """The plan is revoked with the reason; the workflow revokes its requests and cancels their
    referrals; its proposed goals are cancelled and its care team ends."""
    why = _reason(reason, "decline the plan")
    plan = _plan(session, caller, plan_id)
    _in_review(plan)
    note = author.note(f"Declined at review by {author.name}: {why}")
    resources.update(
        session,
        "CarePlan",
        plan_id,
        {**plan, "status": "revoked", "note": [*plan.get("note", []), note]},
        caller,
        if_match=version,
    )
    for goal_ref in plan.get("goal") or []:
        _set(session, caller, goal_ref.get("reference"), "lifecycleStatus", "proposed", "cancelled")
    for team_ref in plan.get("careTeam") or []:
        _set(session, caller, team_ref.get("reference"), "status", "proposed", "inactive")


def _set(
    session: Session, caller: Caller, ref: str | None, field_: str, old: str, new: str
) -> None:
    parsed = Reference.parse_relative(ref)
    if parsed is None or parsed.type is None:
        return
    doc = _served(session, caller, parsed.type, parsed.id)
    if doc is not None and doc.get(field_) == old:
        resources.update(session, parsed.type, parsed.id, {**doc, field_: new}, caller)


def drop(
    session: Session, caller: Caller, plan_id: str, request_id: str, reason: str, author: Author
) -> str:
    """One activity leaves the plan in review: its referral cancelled, its request revoked, the
    plan's activity keeping the note of who dropped it and why. Returns the service's name."""
    why = _reason(reason, "drop the activity")
    plan = _plan(session, caller, plan_id)
    _in_review(plan)
    ref = _own_activity(plan, request_id)
    text = f"Dropped at review by {author.name}: {why}"
    for task_id in match_ids(session, "Task", [("focus", ref)], caller=caller):
        task = dict(resources.read(session, "Task", task_id, caller).content)
        if task.get("status") in workflow.OPEN:
            task.update(status="cancelled", statusReason={"text": text})
            resources.update(session, "Task", task_id, task, caller)
    request = dict(resources.read(session, "ServiceRequest", request_id, caller).content)
    if request.get("status") not in _DEAD_REQUEST:
        resources.update(
            session, "ServiceRequest", request_id, {**request, "status": "revoked"}, caller
        )
    plan = _plan(session, caller, plan_id)  # the workflow noted the revocation in it meanwhile
    activities = [
        {**a, "progress": [*(a.get("progress") or []), author.note(text)]}
        if (a.get("reference") or {}).get("reference") == ref
        else a
        for a in plan.get("activity") or []
    ]
    resources.update(session, "CarePlan", plan_id, {**plan, "activity": activities}, caller)
    return str((request.get("code") or {}).get("text") or "the activity")


def add(
    session: Session, caller: Caller, plan_id: str, definition_id: str, settings: Settings
) -> str:
    """One more activity from the templates, rendered as the engine renders a plan's; returns
    its title."""
    plan = _plan(session, caller, plan_id)
    _in_review(plan)
    made = careplans.new_activity(session, plan, definition_id, settings)
    for doc in (made.request, made.task):
        resources.update(session, doc["resourceType"], doc["id"], doc, caller)
    plan = _plan(session, caller, plan_id)
    plan["activity"] = [*(plan.get("activity") or []), made.activity]
    resources.update(session, "CarePlan", plan_id, plan, caller)
    return str((made.request.get("code") or {}).get("text") or definition_id)


def choose_partner(
    session: Session, caller: Caller, task_id: str, version: int, organization: str
) -> str:
    """The referral goes to another eligible partner (or to its first, when it had none). In a
    plan in review it only changes hands; in an active plan it goes out as approval would send
    it (or waits for the patient's consent). Returns the partner's name."""
    task = _served(session, caller, "Task", task_id)
    if task is None:
        raise NotFound(f"There is no referral {task_id}.")
    if task.get("status") not in _EDITABLE_TASK:
        raise BusinessRule(
            f"This referral is {task_state(task.get('status')).lower()}: its partner can no "
            "longer be changed."
        )
    request_ref = (task.get("focus") or {}).get("reference")
    parsed = Reference.parse_relative(request_ref, "ServiceRequest")
    request = _served(session, caller, "ServiceRequest", parsed.id) if parsed else None
    if request is None:
        raise NotFound(f"There is no referral {task_id}.")
    choice = next(
        (
            c
            for c in workflow.partner_choices(session, request)
            if c.organization == organization and c.eligible
        ),
        None,
    )
    if choice is None:
        raise BusinessRule("Choose one of the eligible partners listed.")
    if (task.get("owner") or {}).get("reference") == organization:
        raise BusinessRule(f"The referral is with {choice.name} already.")
    owner = {"reference": choice.organization, "display": choice.name}
    changed = {**task, "owner": owner}
    if request.get("status") == "active":  # the plan is approved: it goes out now
        changed = careplans.send_or_hold(session, changed)
    resources.update(session, "Task", task_id, changed, caller, if_match=version)
    resources.update(
        session,
        "ServiceRequest",
        request["id"],
        {**request, "performer": [owner]},
        caller,
    )
    return choice.name


def move_due(
    session: Session,
    caller: Caller,
    task_id: str,
    version: int,
    new_date: str,
    reason: str,
    author: Author,
    shown: Display,
) -> str:
    """A referral's deadline moves to the end of ``new_date`` in the facility's zone, with a note
    of who moved it, from when, and why (its request's window follows). Returns the new date in
    words."""
    why = _reason(reason, "move the due date")
    try:
        day = date.fromisoformat(new_date.strip())
    except ValueError:
        raise InvalidRequest("Give the new due date as a date (year-month-day).") from None
    if day < shown.today:
        raise BusinessRule("The new due date is in the past; choose today or a later day.")
    task = _served(session, caller, "Task", task_id)
    if task is None:
        raise NotFound(f"There is no referral {task_id}.")
    if task.get("status") not in workflow.OPEN:
        raise BusinessRule("This referral is finished; its due date can no longer move.")
    period = dict((task.get("restriction") or {}).get("period") or {})
    before = period.get("end")
    end = datetime.combine(day, time(23, 59, 59), tzinfo=shown.zone).isoformat(timespec="seconds")
    old = shown.local(before)
    was = old.date().isoformat() if old is not None else "none"
    note = author.note(f"Due date moved from {was} to {day.isoformat()} by {author.name}: {why}")
    changed = {
        **task,
        "restriction": {**(task.get("restriction") or {}), "period": {**period, "end": end}},
        "note": [*(task.get("note") or []), note],
    }
    resources.update(session, "Task", task_id, changed, caller, if_match=version)
    parsed = Reference.parse_relative((task.get("focus") or {}).get("reference"), "ServiceRequest")
    request = _served(session, caller, "ServiceRequest", parsed.id) if parsed else None
    if request is not None and request.get("occurrencePeriod"):
        window = {**request["occurrencePeriod"], "end": end}
        resources.update(
            session,
            "ServiceRequest",
            request["id"],
            {**request, "occurrencePeriod": window},
            caller,
        )
    return shown.day(day)


# -- choosing a partner for one referral (from the worklist) ------------------------------------------


@dataclass(frozen=True, slots=True)
class ReferralPartner:
    task_id: str
    version: int
    service: str
    patient: str
    patient_id: str
    status: str
    state: str
    partner: str | None
    why_none: str | None
    deadline: str
    choices: list[workflow.PartnerChoice]


def _recorded_reason(names: Names, request: dict[str, Any]) -> str:
    """Why the referral has no partner, as its plan recorded it when the gap showed."""
    me = f"ServiceRequest/{request.get('id')}"
    for based in request.get("basedOn") or []:
        reason = _no_partner(_progress(names.resource(based) or {}).get(me, []))
        if reason:
            return reason
    return "no partner has taken it yet"


def referral_partner(
    session: Session, caller: Caller, task_id: str, shown: Display
) -> ReferralPartner | None:
    stored = None
    try:
        stored = resources.read_served(session, "Task", task_id, caller)
    except NotFound:
        return None
    task = stored.content
    names = Names(session, caller)
    request = names.resource(task.get("focus")) or {}
    owner = (task.get("owner") or {}).get("reference")
    end = ((task.get("restriction") or {}).get("period") or {}).get("end")
    editable = task.get("status") in _EDITABLE_TASK and bool(request)
    return ReferralPartner(
        task_id=task_id,
        version=stored.version_id,
        service=str((request.get("code") or {}).get("text") or "Referral"),
        patient=names.of(task.get("for"), missing="(no name)"),
        patient_id=Reference.id_of((task.get("for") or {}).get("reference"), "Patient") or "",
        status=str(task.get("status")),
        state=task_state(task.get("status")),
        partner=names.of(task.get("owner")) if owner else None,
        why_none=None if owner else _recorded_reason(names, request),
        deadline=shown.when(end) if end else "no deadline",
        choices=workflow.partner_choices(session, request) if editable else [],
    )
