"""What a fired plan rule does, in the transaction that stored the result, as the gateway:

1. its activities are added to the patient's ACTIVE care plan (a new CarePlan version; each a
   ServiceRequest and a referral Task routed as the engine routes referrals), their windows
   counted from the screening (the result's effective time), not from the discharge nor from an
   approval; in review mode they are drafts, held until the case manager approves each one
   (ServiceRequest draft → active), and a ``plan-revision`` work item says so; with no active plan,
   nothing is added and the work item says there is no plan to revise;
2. its alert (``suicide-risk``) goes out at once, never held: a Flag on the Patient (on the
   worklist) and a ``stat`` Communication to the care team and the case manager, as the monitors'
   crisis alert does.

Idempotent: the alert's id is keyed by the screening (the QuestionnaireResponse the result was
derived from) and each added request carries an identifier naming the screening and the
activity, so the same response scored twice adds nothing twice; an activity the plan already has
open (not finished) is not added again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import careplans, clock, monitors, privacy
from fhir_gateway.assessments._planrules import Firing
from fhir_gateway.errors import BusinessRule, NotFound
from fhir_gateway.services import lookup
from fhir_gateway.settings import Settings

__all__ = [
    "REVISION_SYSTEM",
    "PLAN_REVISION",
    "AddedActivity",
    "apply_firing",
    "source_of",
    "held_flag_id",
    "written",
]

REVISION_SYSTEM = "http://fhir-gateway.org/fhir/plan-revision"  # SR.identifier: screening#activity
PLAN_REVISION = "plan-revision"
_OPEN_REQUEST = frozenset({"draft", "active", "on-hold"})
_FLAG_DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"


@dataclass(frozen=True, slots=True)
class AddedActivity:
    title: str
    request: str  # ServiceRequest/id
    due: str | None
    owner: str | None
    held: bool


def _ref(doc: dict[str, Any]) -> str:
    return f"{doc['resourceType']}/{doc['id']}"


def _subject(doc: dict[str, Any]) -> str:
    return str((doc.get("subject") or {}).get("reference") or "")


def source_of(session: Session, result: dict[str, Any]) -> str:
    """The screening a result comes from: the QuestionnaireResponse it was derived from (a health
    concern: through its evidence), else the result itself."""
    for derived in result.get("derivedFrom", []):
        ref = str(derived.get("reference") or "")
        if ref.startswith("QuestionnaireResponse/"):
            return ref
    for evidence in result.get("evidence", [])[:10]:
        for detail in evidence.get("detail", [])[:10]:
            found = lookup.read(session, detail.get("reference"))
            if found is not None and found.get("resourceType") == "Observation":
                for derived in found.get("derivedFrom", []):
                    ref = str(derived.get("reference") or "")
                    if ref.startswith("QuestionnaireResponse/"):
                        return ref
    return _ref(result)


def _parse(text: Any) -> datetime | None:
    if not isinstance(text, str) or "T" not in text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def written(at: datetime) -> str:
    """A time as a case manager reads it in a note that stays as written (no "today"): "Wed 12
    Mar 2025, 9:30 am (UTC-05:00)", at the offset the source gave it (the facility's)."""
    offset = at.strftime("%z")
    zone = "UTC" if offset in ("", "+0000") else f"UTC{offset[:3]}:{offset[3:]}"
    clock_time = f"{at.hour % 12 or 12}:{at.minute:02d} {'am' if at.hour < 12 else 'pm'}"
    return f"{at:%a} {at.day} {at:%b} {at.year}, {clock_time} ({zone})"


def authored_at(result: dict[str, Any]) -> datetime:
    """When the screening was answered: the result's effective (or onset, recorded) time."""
    for text in (
        result.get("effectiveDateTime"),
        (result.get("effectivePeriod") or {}).get("start"),
        result.get("effectiveInstant"),
        result.get("onsetDateTime"),
        result.get("recordedDate"),
        result.get("issued"),
    ):
        found = _parse(text)
        if found is not None:
            return found
    return clock.now()


def active_plan(session: Session, patient: str) -> dict[str, Any] | None:
    """The patient's newest active plan made from a discharge (the one a revision goes into)."""
    plans = [
        p
        for p in lookup.search(session, "CarePlan", [("subject", patient), ("status", "active")])
        if careplans.plan_key_of(p) and (p.get("encounter") or {}).get("reference")
    ]
    return max(
        plans,
        key=lambda p: ((p.get("period") or {}).get("start", ""), p["meta"].get("lastUpdated", "")),
        default=None,
    )


def _open_urls(session: Session, plan: dict[str, Any]) -> set[str]:
    urls: set[str] = set()
    for ref in careplans.activity_requests(plan):
        request = lookup.read(session, ref) or {}
        if request.get("status") in _OPEN_REQUEST:
            urls |= {c.split("|", 1)[0] for c in request.get("instantiatesCanonical", [])}
    return urls


def _made_before(session: Session, key: str) -> bool:
    return bool(
        lookup.search(session, "ServiceRequest", [("identifier", f"{REVISION_SYSTEM}|{key}")])
    )


def _add(
    session: Session,
    settings: Settings,
    plan: dict[str, Any],
    definition: dict[str, Any],
    firing: Firing,
    key: str,
) -> tuple[AddedActivity, dict[str, Any]]:
    """One activity's request and Task, stored; returns it and the plan's activity entry."""
    made = careplans.new_activity(session, plan, definition["id"], settings, again=True)
    start = authored_at(firing.resource)
    span = careplans.window(start, definition)
    held = settings.careplan_mode == "review"
    request = {
        **made.request,
        "identifier": [
            *made.request.get("identifier", []),
            {"system": REVISION_SYSTEM, "value": key},
        ],
        "reasonReference": [
            *made.request.get("reasonReference", []),
            {"reference": _ref(firing.resource)},
        ],
    }
    task = dict(made.task)
    if span is not None:
        request["occurrencePeriod"] = span.to_period()
        task["restriction"] = {"period": span.to_period()}
    late = span is not None and span.end < clock.now()
    task["priority"] = "urgent" if late else request.get("priority", "routine")
    if held:
        request["status"] = "draft"
        task["status"] = "draft"
    lookup.save(session, request)
    lookup.save(session, task)
    title = str((request.get("code") or {}).get("text") or definition["id"])
    note = {
        "time": clock.to_instant(clock.now()),
        "text": f"Added after {firing.rule.title} ({_ref(firing.resource)}, screened "
        f"{written(start)})" + ("; awaiting approval." if held else "."),
    }
    activity = {**made.activity, "progress": [*made.activity.get("progress", []), note]}
    owner = (task.get("owner") or {}).get("display") or (task.get("owner") or {}).get("reference")
    due = span.to_period()["end"] if span is not None else None
    return AddedActivity(title, _ref(request), due, owner, held), activity


def _revise(
    session: Session, settings: Settings, plan: dict[str, Any], firing: Firing, source: str
) -> tuple[list[AddedActivity], list[str]]:
    """The activities added to ``plan`` (one new version), and what could not be added."""
    templates = careplans.template_set(session)
    open_urls = _open_urls(session, plan)
    added: list[AddedActivity] = []
    entries: list[dict[str, Any]] = []
    problems: list[str] = []
    for url in firing.rule.activities:
        definition = templates.by_url.get(url)
        key = f"{source}#{url.rsplit('/', 1)[-1]}"
        if definition is None:
            problems.append(f"the activity template {url} is not stored")
            continue
        if url in open_urls or _made_before(session, key):
            continue  # already in the plan and not finished, or added for this screening before
        try:
            done, entry = _add(session, settings, plan, definition, firing, key)
        except (BusinessRule, NotFound) as exc:
            problems.append(f"{definition.get('title') or url}: {exc}")
            continue
        added.append(done)
        entries.append(entry)
    if entries:
        current = lookup.read(session, _ref(plan)) or plan
        note = {
            "time": clock.to_instant(clock.now()),
            "text": f"Revised after {firing.rule.title} ({_ref(firing.resource)}): "
            + ", ".join(a.title for a in added)
            + " added.",
        }
        lookup.save(
            session,
            {
                **current,
                "activity": [*current.get("activity", []), *entries],
                "note": [*current.get("note", []), note],
            },
        )
    return added, problems


def _describe(added: list[AddedActivity]) -> str:
    parts = []
    for a in added:
        to = f" to {a.owner}" if a.owner else " (no partner: unassigned)"
        parts.append(f"{a.title} (due {a.due[:16] if a.due else 'open'}{to})")
    return "; ".join(parts)


def _labels(*docs: dict[str, Any] | None) -> list[dict[str, Any]]:
    return privacy.merge_labels(*(privacy.labels_of(d) for d in docs if d))


def _alert(
    session: Session,
    settings: Settings,
    firing: Firing,
    source: str,
    plan: dict[str, Any] | None,
    added: list[AddedActivity],
) -> None:
    rule, result = firing.rule, firing.resource
    when = written(authored_at(result))
    if plan is None:
        status = " No active care plan to revise."
    elif any(a.held for a in added):
        status = f" Added to the plan, awaiting approval: {_describe(added)}."
    elif added:
        status = f" Added to the plan: {_describe(added)}."
    else:
        status = " The plan already has its activities open."
    for code in rule.alert:
        alert = monitors.Alert(
            codes=[code],
            patient=_subject(result),
            text=f"{rule.title} (screening of {when}). Contact the patient now.{status}",
            priority=rule.priority,
            category="safety" if rule.priority == "PH" else "clinical",
            details=[_ref(result), source, *([_ref(plan)] if plan else [])],
            encounter=(plan or {}).get("encounter", {}).get("reference"),
            labels=_labels(result, plan),
        )
        flag_id = monitors.monitor_id(code, source)
        if not monitors.create_once(
            session, monitors.flag(flag_id, alert, settings.referral_requester)
        ):
            continue  # the same screening scored again: alerted already
        recipients = monitors.care_team_of_plan(plan, settings.case_manager)
        monitors.create_once(
            session,
            monitors.communication(
                monitors.monitor_id(code, source, "care-team"),
                alert,
                sender=settings.referral_requester,
                recipients=list(dict.fromkeys([*recipients, settings.case_manager])),
                about=[f"Flag/{flag_id}", _ref(result)],
            ),
        )


def held_flag_id(source: str) -> str:
    return monitors.monitor_id(PLAN_REVISION, source)


def _work_item(
    session: Session,
    settings: Settings,
    firing: Firing,
    source: str,
    plan: dict[str, Any] | None,
    added: list[AddedActivity],
    problems: list[str],
) -> None:
    """One ``plan-revision`` Flag per screening: what awaits approval, what had no plan to go
    into, what could not be added (each rule that fired adds its lines)."""
    held = [a for a in added if a.held]
    if plan is None:
        templates = careplans.template_set(session)
        titles = ", ".join(
            str((templates.by_url.get(url) or {}).get("title") or url.rsplit("/", 1)[-1])
            for url in firing.rule.activities
        )
        lines = [f"{firing.rule.title}: no active care plan to revise ({titles} not added)."]
    else:
        lines = []
        if held:
            lines.append(
                f"{firing.rule.title}: awaiting approval: {_describe(held)}; approve each referral "
                "(ServiceRequest draft → active)."
            )
        lines += [f"{firing.rule.title}: could not add {p}." for p in problems]
    if not lines:
        return
    flag_id = held_flag_id(source)
    current = lookup.read(session, f"Flag/{flag_id}")
    if current is not None:
        old = str((current.get("code") or {}).get("text") or "")
        if all(line in old for line in lines):
            return
        text = f"{old} {' '.join(x for x in lines if x not in old)}".strip()
        extra = [{"url": _FLAG_DETAIL, "valueReference": {"reference": a.request}} for a in held]
        lookup.save(
            session,
            {
                **current,
                "status": "active",
                "code": {**current["code"], "text": text},
                "extension": [*current.get("extension", []), *extra],
            },
        )
        return
    alert = monitors.Alert(
        codes=[PLAN_REVISION],
        patient=_subject(firing.resource),
        text=" ".join(lines),
        priority="PH" if firing.rule.priority == "PH" else "PM",
        category="admin",
        details=[source, *([_ref(plan)] if plan else []), *(a.request for a in held)],
        encounter=(plan or {}).get("encounter", {}).get("reference"),
        labels=_labels(firing.resource, plan),
    )
    monitors.create_once(session, monitors.flag(flag_id, alert, settings.referral_requester))


def apply_firing(session: Session, settings: Settings, firing: Firing) -> list[AddedActivity]:
    """Revise the plan, then alert (in this order, so the alert says what was added)."""
    patient = _subject(firing.resource)
    if not patient.startswith("Patient/"):
        return []
    monitors.lock(session, "plan-rule", patient)
    source = source_of(session, firing.resource)
    plan = active_plan(session, patient)
    added: list[AddedActivity] = []
    problems: list[str] = []
    if plan is not None and firing.rule.activities:
        added, problems = _revise(session, settings, plan, firing, source)
    if firing.rule.alert:
        _alert(session, settings, firing, source, plan, added)
    if firing.rule.activities:
        _work_item(session, settings, firing, source, plan, added, problems)
    return added
