"""``PlanDefinition/$apply`` (R4): apply templates to a subject and return one CarePlan whose Goals,
ServiceRequests, referral Tasks and CareTeam are contained, and whose activity is a contained
RequestGroup of the applicable actions. Nothing is stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.careplans._context import (
    DischargeContext,
    DischargeEvent,
    load_context,
    load_subject_context,
)
from fhir_gateway.careplans._planner import draft_plan
from fhir_gateway.careplans._render import Rendered, render
from fhir_gateway.careplans._service import render_options
from fhir_gateway.careplans._templates import TemplateSet, template_set
from fhir_gateway.errors import InvalidRequest, NotFound
from fhir_gateway.fhir.validation import validate_resource
from fhir_gateway.privacy import labels_of, merge_labels
from fhir_gateway.settings import Settings

__all__ = [
    "ApplyParameters",
    "apply_plan_definition",
    "parameters_from_resource",
    "parameters_from_query",
]

_SCALARS = (
    "subject",
    "encounter",
    "practitioner",
    "organization",
    "userType",
    "userLanguage",
    "userTaskContext",
    "setting",
    "settingContext",
    "url",
    "planDefinition",
)


@dataclass(slots=True)
class ApplyParameters:
    subject: list[str] = field(default_factory=list)
    encounter: str | None = None
    practitioner: str | None = None
    organization: str | None = None
    url: str | None = None  # a stored PlanDefinition's canonical URL (type-level form)
    plan_definition: dict[str, Any] | None = None  # an inline PlanDefinition (type-level form)
    context: dict[str, Any] = field(default_factory=dict)  # setting, userType, …: as %variables


def _value(param: dict[str, Any]) -> Any:
    if "resource" in param:
        return param["resource"]
    for key, value in param.items():
        if key.startswith("value"):
            if isinstance(value, dict) and "reference" in value:
                return value["reference"]
            return value
    return None


def parameters_from_resource(body: Any) -> ApplyParameters:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise InvalidRequest("$apply takes a Parameters resource")
    pairs = [(p.get("name"), _value(p)) for p in body.get("parameter", [])]
    return _parameters(pairs)


def parameters_from_query(items: list[tuple[str, str]]) -> ApplyParameters:
    return _parameters(list(items))


def _parameters(pairs: list[tuple[Any, Any]]) -> ApplyParameters:
    params = ApplyParameters()
    for name, value in pairs:
        if value is None or name in ("_format", "_pretty"):
            continue
        if name == "subject":
            params.subject.append(str(value))
        elif name == "planDefinition" and isinstance(value, dict):
            params.plan_definition = value
        elif name in ("encounter", "practitioner", "organization", "url"):
            setattr(params, name, str(value))
        elif name in _SCALARS:
            params.context[name] = value
        else:
            raise InvalidRequest(f"Unknown $apply parameter {name!r}")
    if len(params.subject) != 1:
        raise InvalidRequest("$apply needs exactly one subject (Patient/id)")
    return params


def _roots(
    templates: TemplateSet, plan_id: str | None, params: ApplyParameters
) -> list[dict[str, Any]]:
    if plan_id:
        plan = templates.by_ref.get(f"PlanDefinition/{plan_id}")
        if plan is None:
            raise NotFound(f"PlanDefinition/{plan_id} is not known")
        return [plan]
    if params.plan_definition is not None:
        validate_resource(params.plan_definition, expected_type="PlanDefinition")
        return [params.plan_definition]
    if params.url:
        return [templates.resolve(params.url)]
    return templates.discharge_plans()


def _context(session: Session, params: ApplyParameters, settings: Settings) -> DischargeContext:
    subject = params.subject[0]
    if params.encounter:
        ctx = load_context(session, DischargeEvent(params.encounter), settings)
        if ctx.patient_ref != subject:
            raise InvalidRequest(f"{params.encounter} is not an encounter of {subject}")
    else:
        ctx = load_subject_context(session, subject, settings)
    ctx.extra.update(params.context)
    return ctx


def apply_plan_definition(
    session: Session, settings: Settings, params: ApplyParameters, plan_id: str | None = None
) -> dict[str, Any]:
    templates = template_set(session)
    roots = _roots(templates, plan_id, params)
    ctx = _context(session, params, settings)
    draft = draft_plan(templates, ctx, roots)
    if draft.empty:
        return _not_applicable(ctx, roots)
    options = render_options(session, ctx, draft, settings, key="apply", contained=True)
    if params.organization:
        options.requester = params.organization
    if params.practitioner:
        options.case_manager = params.practitioner
    return _contained(render(draft, ctx, options))


def _strip(doc: dict[str, Any]) -> dict[str, Any]:
    """A contained resource carries no narrative and no security labels (dom-1, dom-5)."""
    out = {k: v for k, v in doc.items() if k != "text"}
    meta = {k: v for k, v in (doc.get("meta") or {}).items() if k != "security"}
    if meta:
        out["meta"] = meta
    else:
        out.pop("meta", None)
    return out


def _request_group(rendered: Rendered) -> dict[str, Any]:
    plan = rendered.careplan
    actions = []
    for request, task in zip(rendered.requests, rendered.tasks, strict=True):
        actions.append(
            {
                "title": (request.get("code") or {}).get("text"),
                "code": [request["code"]] if request.get("code") else [],
                "timingPeriod": request.get("occurrencePeriod"),
                "resource": {"reference": f"#{request['id']}"},
                "action": [{"title": "Referral", "resource": {"reference": f"#{task['id']}"}}],
            }
        )
    group = {
        "resourceType": "RequestGroup",
        "id": "requestgroup",
        "instantiatesCanonical": plan.get("instantiatesCanonical", []),
        "status": plan["status"],
        "intent": "plan",
        "subject": plan["subject"],
        "encounter": plan.get("encounter"),
        "authoredOn": plan.get("created"),
        "action": [{k: v for k, v in a.items() if v not in (None, [])} for a in actions],
    }
    return {k: v for k, v in group.items() if v not in (None, [])}


def _contained(rendered: Rendered) -> dict[str, Any]:
    plan = {k: v for k, v in rendered.careplan.items() if k not in ("id", "identifier")}
    others = [rendered.careteam, *rendered.goals, *rendered.requests, *rendered.tasks]
    labels = merge_labels(*(labels_of(d) for d in [plan, *others]))
    plan["meta"] = {**plan.get("meta", {}), "security": labels}
    plan["contained"] = [*(_strip(d) for d in others), _request_group(rendered)]
    plan["activity"] = [{"reference": {"reference": "#requestgroup"}}]
    return plan


def _not_applicable(ctx: DischargeContext, roots: list[dict[str, Any]]) -> dict[str, Any]:
    titles = (
        ", ".join(str(r.get("title") or r.get("id")) for r in roots)
        or "no discharge template is stored"
    )
    plan: dict[str, Any] = {
        "resourceType": "CarePlan",
        "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>No action applies ({titles}).</p></div>',
        },
        "status": "draft",
        "intent": "proposal",
        "subject": {"reference": ctx.patient_ref},
    }
    urls = [r["url"] for r in roots if r.get("url")]
    if urls:
        plan["instantiatesCanonical"] = urls
    if ctx.encounter_ref:
        plan["encounter"] = {"reference": ctx.encounter_ref}
    return plan
