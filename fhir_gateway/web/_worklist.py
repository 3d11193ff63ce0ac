"""The case manager's worklist: what needs a person now, ranked, one page at a time.

Ranked (``RANKS``): crisis and readmission alerts; a missed 7-day follow-up after a psychiatric
discharge (``_follow_up``: the monitors' FUH outcome of the last 60 days' discharges); plans waiting for approval; referrals with no
partner (the reason the monitors recorded) or waiting for the patient's consent; referrals sent
late, not acknowledged within the window, at risk or past their deadline (the monitors' Flags:
shown, never recomputed here); then referrals due within ``DUE_SOON_HOURS`` and 7-day
follow-ups not yet made whose window is still open. Each row says what
to do next and links to where it is done, and names the patient's relapse signals active now
(``relapse.risk_summaries``, for the page's patients at once: a few queries per page).

Cost: whatever the number of active referrals, a page takes a fixed number of queries. The
candidates are read as a few scalar fields each (``store.search.match_fields``: the Flags, the
draft plans, the open referral Tasks, the draft requests), ranked and filtered in memory, and
only the page's rows are read whole (``Names.prefetch``: one query per resource type). The
follow-ups add one query, and the monitors' evaluation per recently discharged patient.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import relapse
from fhir_gateway.context import Caller
from fhir_gateway.fhir.references import Reference
from fhir_gateway.monitors import MONITOR_FLAGS
from fhir_gateway.settings import Settings
from fhir_gateway.store.search import match_fields
from fhir_gateway.web._caseload import caseload_patients
from fhir_gateway.web._display import Display, Names, flag_kind, task_state
from fhir_gateway.web._follow_up import recent_outcomes, window

__all__ = [
    "Filters",
    "Action",
    "Row",
    "Worklist",
    "worklist",
    "RANKS",
    "PAGE_SIZE",
    "DUE_SOON_HOURS",
    "STATE_FILTERS",
    "states",
]

PAGE_SIZE = 25
DUE_SOON_HOURS = 48
OPEN = "draft,requested,accepted,in-progress,on-hold"
SENT = frozenset({"requested", "accepted", "in-progress", "on-hold"})
STATE_FILTERS = ("draft", "requested", "accepted", "in-progress", "on-hold")
# lower first; within a rank, ``_NEWEST_FIRST`` kinds show the latest first, the others the oldest
RANKS: dict[str, int] = {
    "crisis": 0,
    "suicide-risk": 0,  # a screening's crisis alert (assessments' plan rules)
    "readmission": 1,
    "follow-up-missed": 2,
    "warning-signs": 2,
    "plan": 3,
    "plan-revision": 3,  # a screening's activities to approve, or no plan to add them to
    "unassigned": 4,
    "unable-to-contact": 4,
    "consent": 5,
    "late": 6,
    "unacknowledged": 7,
    "deadline-at-risk": 8,
    "past-deadline": 9,
    "rerouted": 10,
    "no-encounter": 11,
    "alert": 12,
    "due-soon": 13,
    "follow-up-due": 13,
}
_NEWEST_FIRST = frozenset({"crisis", "suicide-risk", "readmission", "past-deadline"})
_KINDS = {
    "plan": "Plan to approve",
    "consent": "Waiting for consent",
    "past-deadline": "Overdue",
    "due-soon": "Due soon",
    "follow-up-missed": "7-day follow-up missed",
    "follow-up-due": "Due soon",
    "unable-to-contact": "Patient not reached",
}
_REFERENCE = re.compile(r"\s*\((?:[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}(?:,\s*)?)+\)")
_NO_PARTNER = re.compile(r"has no partner: (.+?)\. (?:Assign it|Its request)")


@dataclass(frozen=True, slots=True)
class Filters:
    mine: str | None = None  # Practitioner/id of the user: only that caseload
    partner: str | None = None  # Organization/id
    state: str | None = None  # a referral Task status
    page: int = 1


@dataclass(frozen=True, slots=True)
class Action:
    label: str
    href: str


@dataclass(slots=True)
class Row:
    kind: str
    at: str  # the moment that orders it within its rank (FHIR date/time text)
    patient: str  # Patient/id
    task: str | None = None  # Task/id
    plan: str | None = None  # CarePlan/id
    focus: str | None = None  # ServiceRequest/id
    owner: str | None = None
    status: str | None = None
    deadline: str | None = None
    text: str = ""  # the Flag's words, or the plan's title
    also: list[str] = field(default_factory=list)  # other alerts on the same referral
    # filled for the page only
    label: str = ""
    patient_name: str = ""
    patient_id: str = ""
    what: str = ""
    detail: str = ""
    partner: str | None = None
    partner_phone: str | None = None
    state: str | None = None
    when: str = ""
    when_iso: str = ""
    action: Action | None = None
    risk: list[tuple[str, str]] = field(default_factory=list)  # (signal, since) active now

    @property
    def rank(self) -> int:
        return RANKS.get(self.kind, RANKS["alert"])


@dataclass(frozen=True, slots=True)
class Worklist:
    rows: list[Row]
    total: int
    page: int
    pages: int
    counts: dict[str, int]  # per kind label, over every page
    partners: list[tuple[str, str]]  # (Organization/id, name) for the partner filter


# -- candidates: a few fields each, a fixed number of queries ----------------------------------------


def _flags(session: Session, caller: Caller) -> list[Row]:
    found = match_fields(
        session,
        "Flag",
        [("_tag", f"{MONITOR_FLAGS}|")],  # Flag has no status search parameter in R4
        {
            "patient": ("subject", "reference"),
            "start": ("period", "start"),
            "tag": ("meta", "tag", 0, "code"),
            "reason": ("code", "coding", 1, "code"),
            "about": ("extension", 1, "valueReference", "reference"),
            "text": ("code", "text"),
        },
        caller=caller,
        equal={("status",): "active"},
    )
    rows = []
    for f in found:
        kind = f["reason"] if f["tag"] == "overdue" and f["reason"] else f["tag"] or "alert"
        about = f["about"] or ""
        rows.append(
            Row(
                kind=kind,
                at=f["start"] or "",
                patient=f["patient"] or "",
                task=about if about.startswith("Task/") else None,
                plan=about if about.startswith("CarePlan/") else None,
                text=f["text"] or "",
            )
        )
    return rows


def _plans(session: Session, caller: Caller) -> list[Row]:
    found = match_fields(
        session,
        "CarePlan",
        [("status", "draft")],
        {"patient": ("subject", "reference"), "created": ("created",), "title": ("title",)},
        caller=caller,
    )
    return [
        Row(
            kind="plan",
            at=p["created"] or "",
            patient=p["patient"] or "",
            plan=f"CarePlan/{p['id']}",
            text=p["title"] or "Care plan",
        )
        for p in found
    ]


def _tasks(session: Session, caller: Caller) -> dict[str, dict[str, Any]]:
    found = match_fields(
        session,
        "Task",
        [("status", OPEN)],
        {
            "patient": ("for", "reference"),
            "owner": ("owner", "reference"),
            "status": ("status",),
            "deadline": ("restriction", "period", "end"),
            "focus": ("focus", "reference"),
            "business": ("businessStatus", "coding", 0, "code"),
        },
        caller=caller,
    )
    return {f"Task/{t['id']}": t for t in found if (t["focus"] or "").startswith("ServiceRequest/")}


def _in_review(session: Session, caller: Caller) -> set[str]:
    """Requests of plans still in review: their draft Tasks are the plan's business, not a row."""
    found = match_fields(session, "ServiceRequest", [("status", "draft")], {}, caller=caller)
    return {f"ServiceRequest/{r['id']}" for r in found}


def _referral_rows(
    tasks: dict[str, dict[str, Any]], flagged: set[str], review: set[str], shown: Display
) -> list[Row]:
    rows = []
    for ref, t in tasks.items():
        if ref in flagged:
            continue
        kind = None
        if (
            t["status"] == "draft"
            and t["business"] == "awaiting-consent"
            and t["focus"] not in review
        ):
            kind = "consent"
        elif t["status"] in SENT and t["deadline"]:
            if shown.past(t["deadline"]):
                kind = "past-deadline"  # the monitors flag it at their next run; it is due now
            elif shown.within(t["deadline"], DUE_SOON_HOURS):
                kind = "due-soon"
        if kind:
            rows.append(
                Row(kind=kind, at=t["deadline"] or "", patient=t["patient"] or "", task=ref)
            )
    return rows


def _merge_same_referral(rows: list[Row]) -> list[Row]:
    """One row per referral: its most urgent alert, naming the others."""
    best: dict[str, Row] = {}
    out = []
    for row in sorted(rows, key=lambda r: r.rank):
        if row.task is None:
            out.append(row)
        elif row.task in best:
            best[row.task].also.append(_label(row.kind))
        else:
            best[row.task] = row
            out.append(row)
    return out


def _sort_key(row: Row, shown: Display) -> tuple[Any, ...]:
    at = shown.local(row.at)
    seconds = at.timestamp() if at is not None else 0.0
    return (row.rank, -seconds if row.kind in _NEWEST_FIRST else seconds, row.patient)


def _label(kind: str) -> str:
    return _KINDS.get(kind) or flag_kind(kind)


# -- the page ---------------------------------------------------------------------------------------


def worklist(
    session: Session, caller: Caller, filters: Filters, shown: Display, settings: Settings
) -> Worklist:
    tasks = _tasks(session, caller)
    rows = _candidates(session, caller, tasks, shown) + _follow_ups(
        session, caller, settings, shown
    )
    rows = _filtered(session, caller, rows, filters)
    rows.sort(key=lambda r: _sort_key(r, shown))
    counts: dict[str, int] = {}
    for row in rows:
        counts[_label(row.kind)] = counts.get(_label(row.kind), 0) + 1
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(max(1, filters.page), pages)
    shown_rows = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    partner_refs = sorted({t["owner"] for t in tasks.values() if t["owner"]})
    names = _read_page(session, caller, shown_rows, tasks, partner_refs)
    for row in shown_rows:
        _describe(row, names, shown)
    _risk_lines(session, caller, settings, shown_rows, shown)
    partners = sorted(((ref, names.of(ref)) for ref in partner_refs), key=lambda p: p[1].casefold())
    return Worklist(shown_rows, len(rows), page, pages, counts, partners)


def _candidates(
    session: Session, caller: Caller, tasks: dict[str, dict[str, Any]], shown: Display
) -> list[Row]:
    """Every row, before filters: the alerts, the plans to approve, the referrals due."""
    flag_rows = _flags(session, caller)
    flagged = {r.task for r in flag_rows if r.task}
    rows = flag_rows + _plans(session, caller)
    rows += _referral_rows(tasks, flagged, _in_review(session, caller), shown)
    for row in rows:
        task = tasks.get(row.task or "")
        if task is not None:
            row.owner, row.status, row.deadline = task["owner"], task["status"], task["deadline"]
            row.focus = task["focus"]
    return _merge_same_referral(rows)


def _follow_ups(session: Session, caller: Caller, settings: Settings, shown: Display) -> list[Row]:
    """A row per recent discharge whose 7-day follow-up was missed, or is open and not yet made."""
    rows = []
    for outcome in recent_outcomes(session, caller, settings, shown):
        seven = window(outcome, 7, shown.today)
        if seven.state == "missed" and window(outcome, 30, shown.today).state != "met":
            kind, at = "follow-up-missed", outcome.local_date
        elif seven.state == "open":
            kind, at = "follow-up-due", seven.last_day
        else:
            continue  # met, excluded, or followed up since: nothing to do
        text = f"{seven.days_left}|{outcome.local_date.isoformat()}"
        rows.append(Row(kind=kind, at=at.isoformat(), patient=outcome.discharge.patient, text=text))
    return rows


def _read_page(
    session: Session,
    caller: Caller,
    rows: list[Row],
    tasks: dict[str, dict[str, Any]],
    partner_refs: list[str],
) -> Names:
    """What the page's rows name, read at once: one query per resource type."""
    names = Names(session, caller)
    ended = [r for r in rows if r.task and r.task not in tasks]  # rejected, completed, …
    names.prefetch([*(r.patient for r in rows), *partner_refs, *(r.task for r in ended)])
    for row in ended:
        _fill_from(row, names.resource(row.task))
    names.prefetch([*(r.owner for r in rows), *(r.focus for r in rows)])
    return names


def _fill_from(row: Row, task: dict[str, Any] | None) -> None:
    """A row about a referral that is no longer open: its partner and state from the Task."""
    if task:
        row.owner = (task.get("owner") or {}).get("reference")
        row.status = task.get("status")
        row.focus = (task.get("focus") or {}).get("reference")


def _filtered(session: Session, caller: Caller, rows: list[Row], filters: Filters) -> list[Row]:
    if filters.mine:
        mine = caseload_patients(session, caller, filters.mine)
        rows = [r for r in rows if r.patient in mine]
    if filters.partner:
        rows = [r for r in rows if r.owner == filters.partner]
    if filters.state:
        rows = [r for r in rows if r.status == filters.state]
    return rows


# -- words for one row ------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """A monitor's sentence without the ``(Task/…)`` references it names things by."""
    return _REFERENCE.sub("", text).strip()


def _service(names: Names, focus: str | None) -> str:
    request = names.resource(focus) or {}
    code = request.get("code") or {}
    return str(
        code.get("text")
        or next((c.get("display") for c in code.get("coding") or [] if c.get("display")), None)
        or "Referral"
    )


def _phone(names: Names, organization: str | None) -> str | None:
    for telecom in (names.resource(organization) or {}).get("telecom") or []:
        if telecom.get("system") == "phone" and telecom.get("value"):
            return str(telecom["value"])
    return None


def _describe(row: Row, names: Names, shown: Display) -> None:
    row.label = _label(row.kind)
    row.patient_name = names.of(row.patient, missing="(no name)")
    row.patient_id = Reference.id_of(row.patient, "Patient") or ""
    row.partner = names.of(row.owner) if row.owner else None
    row.partner_phone = _phone(names, row.owner)
    row.state = task_state(row.status) if row.status else None
    if row.status == "requested" and not row.owner:
        row.state = "Open to any eligible partner"
    row.what = row.text if row.kind == "plan" else _service(names, row.focus) if row.task else ""
    if row.kind.startswith("follow-up-"):
        _describe_follow_up(row, shown)
        row.action = _action(row)
        return
    if row.deadline:
        row.when = f"due {shown.when(row.deadline)} ({shown.relative(row.deadline)})"
        row.when_iso = shown.iso(row.deadline)
    elif row.at:
        made = "made" if row.kind == "plan" else "since"
        row.when, row.when_iso = f"{made} {shown.when(row.at)}", shown.iso(row.at)
    row.detail = _detail(row, shown)
    row.action = _action(row)


def _risk_lines(
    session: Session, caller: Caller, settings: Settings, rows: list[Row], shown: Display
) -> None:
    """Each row's patient's relapse signals active now, read for the page's patients at once."""
    summaries = relapse.risk_summaries(
        session, caller, settings, [r.patient for r in rows], shown.today
    )
    for row in rows:
        signals = summaries.get(row.patient, [])
        names = dict.fromkeys(s.name for s in signals)  # one entry per kind, its newest date
        row.risk = [
            (name, shown.day(next(s.at for s in signals if s.name == name))) for name in names
        ]


def _describe_follow_up(row: Row, shown: Display) -> None:
    days_left, discharged = row.text.split("|", 1)
    row.what = "Follow-up after a psychiatric discharge"
    row.when, row.when_iso = f"discharged {shown.day(discharged)}", shown.iso(discharged)
    if row.kind == "follow-up-missed":
        row.detail = "No mental-health follow-up visit within 7 days of the discharge."
        return
    left = int(days_left)
    row.detail = "No follow-up visit yet: " + (
        "today is the last day of the 7-day window."
        if left == 0
        else f"{left} day{'s' if left != 1 else ''} left in the 7-day window."
    )


def _detail(row: Row, shown: Display) -> str:
    partner = row.partner or "the partner"
    if row.kind == "plan":
        return "Made from the discharge; no referral goes out before it is approved."
    if row.kind == "unassigned":
        found = _NO_PARTNER.search(row.text)
        return f"No partner: {found.group(1)}." if found else _clean(row.text)
    if row.kind == "consent":
        return "Needs the patient's consent to share with the partner (42 CFR Part 2)."
    if row.kind == "unacknowledged":
        return f"{partner} has not accepted it yet (overdue since {shown.when(row.at)})."
    if row.kind == "past-deadline":
        return f"Not done by its deadline; {partner} has it ({task_state(row.status).lower()})."
    if row.kind == "due-soon":
        return f"{partner}: {task_state(row.status).lower()}."
    if row.kind == "late":
        return f"Went to {partner} after its deadline; sent as urgent."
    if row.kind == "deadline-at-risk":
        return f"{partner}'s time to accept ends after the deadline."
    return _clean(row.text)


def _action(row: Row) -> Action:
    patient = f"/web/patients/{row.patient_id}"
    task_id = Reference.id_of(row.task, "Task") or ""
    partner = row.partner or "the partner"
    plan_id = Reference.id_of(row.plan, "CarePlan") or ""
    if row.kind == "crisis":
        return Action("Contact the patient now", patient)
    if row.kind == "readmission":
        return Action("Review the plan with the inpatient team", patient)
    if row.kind == "warning-signs":
        return Action("Call the patient and family; follow their plan", f"{patient}#relapse-h")
    if row.kind == "follow-up-missed":
        return Action("Arrange a follow-up visit with the patient", patient)
    if row.kind == "follow-up-due":
        return Action("Make sure the follow-up visit is booked", patient)
    if row.kind == "plan":
        return Action("Review the plan", f"/web/plans/{plan_id}")
    if row.kind == "unassigned" and task_id and row.status in ("draft", "requested"):
        return Action("Choose a partner", f"/web/referrals/{task_id}/partner")
    if row.kind == "consent":
        return Action("Record the patient's consent", patient)
    if row.kind == "unacknowledged" and task_id:
        return Action(
            f"Call {partner}, or choose another partner", f"/web/referrals/{task_id}/partner"
        )
    if row.kind in ("late", "deadline-at-risk", "past-deadline", "unable-to-contact") and task_id:
        return Action(f"Follow up with {partner} and the patient", f"/web/referrals/{task_id}")
    if row.kind == "due-soon" and task_id:
        verb = "Remind" if row.status == "requested" else "Check with"
        return Action(f"{verb} {partner}", f"/web/referrals/{task_id}")
    return Action("Open the patient", patient)


def states() -> Iterable[tuple[str, str]]:
    return ((s, task_state(s)) for s in STATE_FILTERS)
