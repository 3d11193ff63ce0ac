"""What a case manager may add to a plan by hand, rendered the way the engine renders a discharge's
plan (pure apart from reading the store; nothing is written here):

    template_choices(session, plan)                  # the ActivityDefinitions, and which are in it
    new_activity(session, plan, "housing-support", settings)   # its ServiceRequest, Task, activity

The caller stores the result with its own rights (``services.resources``), so the checks and
consequences of any write apply. An activity added to a plan in review is a draft like the
others; one added to an active plan goes out at once (or waits for consent, as approval does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.careplans._context import DischargeContext, DischargeEvent, load_context
from fhir_gateway.careplans._ids import IDENTIFIER_SYSTEM, resource_id
from fhir_gateway.careplans._partners import (
    directory,
    eligible,
    no_partner_reason,
    patient_address,
    patient_language,
)
from fhir_gateway.careplans._planner import EXT, ActivityDraft, PlanDraft, draft_plan
from fhir_gateway.careplans._render import RenderOptions, render
from fhir_gateway.careplans._store import read
from fhir_gateway.careplans._templates import TemplateSet, template_set
from fhir_gateway.errors import BusinessRule, NotFound
from fhir_gateway.privacy import consents_of, is_part2_sender
from fhir_gateway.settings import Settings
from fhir_gateway.store.inbox_tables import inbox_messages, source_times

__all__ = ["TemplateChoice", "NewActivity", "template_choices", "new_activity", "plan_key_of"]

_DEAD_REQUEST = frozenset({"revoked", "entered-in-error"})
_MAX_COPIES = 20  # one activity re-added after being dropped, and so on: a bound on the loop


@dataclass(frozen=True, slots=True)
class TemplateChoice:
    definition_id: str
    title: str
    description: str
    in_plan: bool


@dataclass(frozen=True, slots=True)
class NewActivity:
    request: dict[str, Any]
    task: dict[str, Any]
    activity: dict[str, Any]  # the CarePlan.activity entry (with why it has no partner, if so)


def plan_key_of(plan: dict[str, Any]) -> str | None:
    """The key the engine made the plan's resources' ids from (None: not an engine plan)."""
    return next(
        (
            i.get("value")
            for i in plan.get("identifier", [])
            if i.get("system") == IDENTIFIER_SYSTEM
        ),
        None,
    )


def _url(definition: dict[str, Any]) -> str:
    return str(definition.get("url") or f"ActivityDefinition/{definition['id']}")


def _live_urls(session: Session, plan: dict[str, Any]) -> set[str]:
    urls: set[str] = set()
    for activity in plan.get("activity", []):
        request = read(session, (activity.get("reference") or {}).get("reference")) or {}
        if request.get("status") not in _DEAD_REQUEST:
            urls |= {c.split("|", 1)[0] for c in request.get("instantiatesCanonical", [])}
    return urls


def _definitions(templates: TemplateSet) -> list[dict[str, Any]]:
    return [
        d
        for ref, d in templates.by_ref.items()
        if ref.startswith("ActivityDefinition/") and d.get("status", "active") == "active"
    ]


def template_choices(session: Session, plan: dict[str, Any]) -> list[TemplateChoice]:
    live = _live_urls(session, plan)
    choices = [
        TemplateChoice(
            d["id"],
            str(d.get("title") or d.get("name") or d["id"]),
            str(d.get("description") or ""),
            _url(d) in live,
        )
        for d in _definitions(template_set(session))
    ]
    return sorted(choices, key=lambda c: c.title.casefold())


def _sender(session: Session, encounter: str | None) -> str | None:
    """Who sent the discharge (its facility decides the zone and the Part 2 rule)."""
    res_type, _, res_id = (encounter or "").partition("/")
    if not res_id:
        return None
    found = session.execute(
        select(inbox_messages.c.sender)
        .join(source_times, source_times.c.message_id == inbox_messages.c.id)
        .where(source_times.c.res_type == res_type, source_times.c.res_id == res_id)
    ).scalar_one_or_none()
    return str(found) if found else None


def _declared_sensitivities(templates: TemplateSet, url: str) -> set[str]:
    """The sensitivities (``substance-use``) of every PlanDefinition that names this activity:
    an activity added by hand is labelled as it would be when its group applies (protective)."""
    found: set[str] = set()

    def names(actions: list[dict[str, Any]]) -> bool:
        return any(
            (a.get("definitionCanonical") or "").split("|", 1)[0] == url
            or names(a.get("action", []))
            for a in actions
        )

    for ref, plan in templates.by_ref.items():
        if ref.startswith("PlanDefinition/") and names(plan.get("action", [])):
            found |= {
                e["valueCode"]
                for e in plan.get("extension", [])
                if e.get("url") == f"{EXT}/sensitivity" and e.get("valueCode")
            }
    return found


def _free_key(session: Session, key: str, definition_id: str) -> str:
    """The activity's local key: its definition's id, or a numbered copy when the plan held it
    before (dropped at review, say), so the new request never overwrites the old one's record."""
    for n in range(1, _MAX_COPIES + 1):
        local = definition_id if n == 1 else f"{definition_id}~{n}"
        if read(session, f"ServiceRequest/{resource_id(key, 'ServiceRequest', local)}") is None:
            return local
    raise BusinessRule(f"{definition_id} was added to this plan too many times already")


def _activity_draft(
    session: Session, ctx: DischargeContext, definition: dict[str, Any], local: str
) -> tuple[ActivityDraft, PlanDraft]:
    templates = template_set(session)
    full = draft_plan(templates, ctx, templates.discharge_plans())
    applied = full.activities.get(definition["id"])
    activity = ActivityDraft(local, definition)
    if applied is not None:  # its conditions hold: the same reasons, goals and values as then
        activity.goals, activity.reasons = list(applied.goals), list(applied.reasons)
        activity.sensitivities, activity.dynamic = set(applied.sensitivities), dict(applied.dynamic)
    else:
        activity.sensitivities = _declared_sensitivities(templates, _url(definition))
    return activity, PlanDraft(plans=full.plans[:1] or [{"id": "added"}], goals=dict(full.goals))


def new_activity(
    session: Session,
    plan: dict[str, Any],
    definition_id: str,
    settings: Settings,
    *,
    again: bool = False,
) -> NewActivity:
    """The ServiceRequest, referral Task and plan activity for one more activity of ``plan``.
    ``again``: also when the plan held it before (a rule adds a new safety-plan review for a new
    screening once the earlier one is done; the caller decides what counts as still open)."""
    key = plan_key_of(plan)
    if key is None or not (plan.get("encounter") or {}).get("reference"):
        raise BusinessRule("Only a plan made from a discharge by the templates can take one")
    definition = template_set(session).by_ref.get(f"ActivityDefinition/{definition_id}")
    if definition is None or definition.get("status", "active") != "active":
        raise NotFound(f"There is no activity template {definition_id!r}.")
    if not again and _url(definition) in _live_urls(session, plan):
        raise BusinessRule(f"The plan already has {definition.get('title') or definition_id}.")
    encounter = plan["encounter"]["reference"]
    sender = _sender(session, encounter)
    ctx = load_context(session, DischargeEvent(encounter, sender=sender), settings)
    local = _free_key(session, key, definition_id)
    activity, draft = _activity_draft(session, ctx, definition, local)
    draft.activities = {local: activity}
    draft.goals = {
        g: goal
        for g, goal in draft.goals.items()
        if {"reference": f"Goal/{resource_id(key, 'Goal', g)}"} in plan.get("goal", [])
    }
    owner = _owner(session, ctx, activity)
    options = RenderOptions(
        key=key,
        mode="review" if plan.get("status") == "draft" else "auto",
        part2=is_part2_sender(settings, sender),
        requester=settings.referral_requester,
        case_manager=settings.case_manager,
        now=clock.to_instant(clock.now()),
        owners={local: owner},
        unassigned={} if owner else {local: _why_none(session, ctx, activity)},
        consents=tuple(consents_of(session, ctx.patient_ref)),
        at=clock.now(),
    )
    rendered = render(draft, ctx, options)
    entry = next(
        a
        for a in rendered.careplan["activity"]
        if a["reference"]["reference"] == f"ServiceRequest/{rendered.requests[0]['id']}"
    )
    return NewActivity(rendered.requests[0], rendered.tasks[0], entry)


def _owner(session: Session, ctx: DischargeContext, activity: ActivityDraft) -> Any:
    partners = eligible(
        directory(session),
        activity.service_codes(),
        address=patient_address(ctx.patient),
        language=patient_language(ctx.patient),
        on=clock.now().date(),
    )
    return partners[0] if partners else None


def _why_none(session: Session, ctx: DischargeContext, activity: ActivityDraft) -> str:
    return no_partner_reason(
        directory(session),
        activity.service_codes(),
        address=patient_address(ctx.patient),
        language=patient_language(ctx.patient),
        on=clock.now().date(),
    )
