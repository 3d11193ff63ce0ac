"""The care-plan engine's use cases inside the intake's transaction: a discharge makes a plan, a
cancelled discharge revokes it. Idempotent: a plan is keyed on its discharge Encounter, so a
re-sent discharge, or an A08 after it, finds the plan and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.careplans._context import (
    DischargeContext,
    DischargeEvent,
    DraftedPlan,
    load_context,
)
from fhir_gateway.careplans._ids import plan_key
from fhir_gateway.careplans._mhca import apply_act
from fhir_gateway.careplans._partners import (
    Partner,
    directory,
    eligible,
    no_partner_reason,
    patient_address,
    patient_language,
)
from fhir_gateway.careplans._planner import PlanDraft, draft_plan
from fhir_gateway.careplans._render import Rendered, RenderOptions, render
from fhir_gateway.careplans._store import (
    ACCEPTED_TASK,
    NOT_YET_ACCEPTED,
    activity_requests,
    close_referrals,
    live_plans_of_patient,
    own_requests,
    plans_of_encounter,
    read,
    retire_plan,
    save_all,
    task_statuses,
)
from fhir_gateway.careplans._templates import template_set
from fhir_gateway.hooks import rules_of
from fhir_gateway.privacy import consents_of, is_mhca_sender, is_part2_sender
from fhir_gateway.services import lookup
from fhir_gateway.services.mhca import act_facts
from fhir_gateway.settings import Settings

__all__ = [
    "PlanResult",
    "apply_discharge",
    "revoke_for_cancelled_discharge",
    "choose_owners",
    "render_options",
    "plan_for_context",
]

_DEAD_PLAN = ("revoked", "entered-in-error")
REPLACED = "Replaced by the care plan of a new discharge"
CANCELLED = "Discharge cancelled (A13)"


@dataclass(frozen=True, slots=True)
class PlanResult:
    """What the engine did: ``created``, ``unchanged`` (re-sent discharge), ``not-applicable``
    (no template applies: not psychiatric, or the patient died), ``revoked``, ``nothing``."""

    outcome: str
    careplan: str | None = None
    written: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    detail: str = ""


def choose_owners(
    session: Session, draft: PlanDraft, ctx: DischargeContext
) -> dict[str, Partner | None]:
    partners = directory(session)
    address, language = patient_address(ctx.patient), patient_language(ctx.patient)
    return {
        key: next(
            iter(
                eligible(
                    partners,
                    a.service_codes(),
                    address=address,
                    language=language,
                    on=ctx.discharge_date,
                )
            ),
            None,
        )
        for key, a in draft.activities.items()
    }


def unassigned_reasons(
    session: Session, draft: PlanDraft, ctx: DischargeContext, owners: dict[str, Partner | None]
) -> dict[str, str]:
    """Why each activity without an owner has none (the plan records it; the monitors raise it)."""
    partners = directory(session)
    address, language = patient_address(ctx.patient), patient_language(ctx.patient)
    return {
        key: no_partner_reason(
            partners, a.service_codes(), address=address, language=language, on=ctx.discharge_date
        )
        for key, a in draft.activities.items()
        if owners.get(key) is None
    }


def render_options(
    session: Session,
    ctx: DischargeContext,
    draft: PlanDraft,
    settings: Settings,
    *,
    key: str,
    contained: bool = False,
) -> RenderOptions:
    owners = choose_owners(session, draft, ctx)
    return RenderOptions(
        key=key,
        mode=settings.careplan_mode,
        part2=is_part2_sender(settings, ctx.sender),
        requester=settings.referral_requester,
        case_manager=settings.case_manager,
        now=clock.to_instant(clock.now()),
        contained=contained,
        owners=owners,
        unassigned=unassigned_reasons(session, draft, ctx, owners),
        consents=tuple(consents_of(session, ctx.patient_ref)),
        at=clock.now(),
    )


def plan_for_context(
    session: Session, ctx: DischargeContext, roots: list[dict[str, Any]] | None = None
) -> PlanDraft:
    templates = template_set(session)
    return draft_plan(templates, ctx, templates.discharge_plans() if roots is None else roots)


def _carry_over(
    session: Session, previous: list[dict[str, Any]]
) -> tuple[list[str], set[str], list[str]]:
    """(requests a partner accepted, their ActivityDefinition URLs, the other requests); the
    Tasks of all the requests found in one search, the accepted requests read in one query."""
    refs = [ref for plan in previous for ref in activity_requests(plan)]
    statuses = task_statuses(session, refs)
    carried = [ref for ref in refs if statuses.get(ref, set()) & ACCEPTED_TASK]
    others = [  # finished referrals (completed, rejected, …) are left as they are
        ref
        for ref in refs
        if not statuses.get(ref, set()) & ACCEPTED_TASK
        and statuses.get(ref, set()) & NOT_YET_ACCEPTED
    ]
    requests = lookup.read_all(session, carried) if carried else {}
    urls = {
        c.split("|", 1)[0]
        for ref in carried
        for c in requests.get(ref, {}).get("instantiatesCanonical", [])
    }
    return carried, urls, others


def _drop_covered(draft: PlanDraft, urls: set[str]) -> None:
    for key in [k for k, a in draft.activities.items() if a.url in urls]:
        del draft.activities[key]


def apply_discharge(session: Session, event: DischargeEvent, settings: Settings) -> PlanResult:
    """Make and store the plan of a discharge, inside the caller's transaction."""
    encounter = read(session, event.encounter)
    if encounter is None or encounter.get("status") != "finished":
        return PlanResult("not-applicable", detail=f"{event.encounter} is not a finished encounter")
    plans = plans_of_encounter(session, event.encounter)
    live = [p for p in plans if p.get("status") not in _DEAD_PLAN]
    if live:
        return PlanResult(
            "unchanged", careplan=f"CarePlan/{live[0]['id']}", detail="this discharge has a plan"
        )
    templates = template_set(session)
    roots = templates.discharge_plans()
    subject = (encounter.get("subject") or {}).get("reference", "")
    if not roots or not subject.startswith("Patient/"):
        return PlanResult("not-applicable", detail="no discharge template is stored, or no patient")
    ctx = load_context(session, event, settings, encounter=encounter)
    draft = draft_plan(templates, ctx, roots)
    if draft.empty:
        return PlanResult(
            "not-applicable", detail="no care-plan template applies to this discharge"
        )
    previous = [
        p
        for p in live_plans_of_patient(session, ctx.patient_ref)
        if (p.get("encounter") or {}).get("reference") != event.encounter
    ]
    carried, covered, others = _carry_over(session, previous)
    _drop_covered(draft, covered)
    options = render_options(
        session, ctx, draft, settings, key=plan_key(event.encounter, len(plans))
    )
    options.carried = carried
    options.replaces = [f"CarePlan/{p['id']}" for p in previous]
    rendered = render(draft, ctx, options)
    if is_mhca_sender(settings, ctx.sender):  # India's Mental Healthcare Act 2017
        apply_act(rendered, act_facts(session, ctx.patient_ref, clock.now()), options.now)
    written = save_all(session, _with_activities(session, rendered, encounter, event.zone))
    written += close_referrals(session, others, REPLACED)
    for plan in previous:
        written += retire_plan(session, plan, REPLACED)
    return PlanResult(
        "created", careplan=_ref(rendered), written=tuple(written), replaced=tuple(options.replaces)
    )


def _with_activities(
    session: Session, rendered: Rendered, encounter: dict[str, Any], zone: str | None
) -> list[dict[str, Any]]:
    """The plan's resources and the activities the ``plan`` rules add to it (the measurement
    schedule's Tasks), named in its ``activity`` and stored in the same write: one version of
    the plan, its rules run once."""
    resources = rendered.resources()
    drafted = DraftedPlan(rendered.careplan, {_key(d): d for d in resources}, encounter, zone)
    added: dict[str, dict[str, Any]] = {}
    for doc in rules_of(session).contributions(session, drafted):
        if _key(doc) not in drafted.resources:
            added.setdefault(_key(doc), doc)
    if not added:
        return resources
    plan = rendered.careplan
    plan["activity"] = [
        *(plan.get("activity") or []),
        *({"reference": {"reference": r}} for r in added),
    ]
    return [*resources[:-1], *added.values(), plan]  # the plan last, as ``Rendered.resources``


def _key(doc: dict[str, Any]) -> str:
    return f"{doc['resourceType']}/{doc['id']}"


def revoke_for_cancelled_discharge(
    session: Session, event: DischargeEvent, settings: Settings
) -> PlanResult:
    """A13: the plan of that discharge revoked and the referrals it issued cancelled. Referrals it
    carried over from an earlier plan stay with their partners."""
    live = [
        p for p in plans_of_encounter(session, event.encounter) if p.get("status") not in _DEAD_PLAN
    ]
    if not live:
        return PlanResult("nothing", detail=f"{event.encounter} has no plan to revoke")
    written: list[str] = []
    for plan in live:
        written += close_referrals(session, own_requests(session, plan), CANCELLED)
        written += retire_plan(session, plan, CANCELLED)
    return PlanResult("revoked", careplan=f"CarePlan/{live[0]['id']}", written=tuple(written))


def _ref(rendered: Rendered) -> str:
    return f"CarePlan/{rendered.careplan['id']}"
