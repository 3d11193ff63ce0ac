"""Plan draft → FHIR resources: CarePlan, Goals, ServiceRequests, referral Tasks, CareTeam.

One renderer for both outputs: ``$apply`` names resources ``#local`` and contains them in the
CarePlan; the intake stores them as separate resources with stable ids. Statuses follow the review
mode: ``auto`` makes an active plan whose referrals are requested, ``review`` a draft plan whose
requests and Tasks are drafts until a case manager approves it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fhir_gateway.careplans._context import DischargeContext
from fhir_gateway.careplans._ids import IDENTIFIER_SYSTEM, resource_id
from fhir_gateway.careplans._partners import Partner
from fhir_gateway.careplans._planner import ActivityDraft, GoalDraft, PlanDraft
from fhir_gateway.careplans._timing import Window, due_date, window
from fhir_gateway.privacy import (
    activity_labels,
    evaluate_consent,
    needs_consent,
    reference_to,
    with_inline_labels,
)

__all__ = [
    "RenderOptions",
    "Rendered",
    "render",
    "AWAITING_CONSENT",
    "PROFILES",
    "UNASSIGNED_NOTE",
    "is_late",
]

_SCT = "http://snomed.info/sct"
_SDOH = "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition"
PROFILES = {
    "CarePlan": [
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-careplan",
        "http://hl7.org/fhir/us/mcc/StructureDefinition/MCCCarePlan",
    ],
    "Goal": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-goal"],
    "CareTeam": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-careteam"],
    "SdohTask": [f"{_SDOH}/SDOHCC-TaskForReferralManagement"],
}
AWAITING_CONSENT = {
    "coding": [
        {
            "system": "http://fhir-gateway.org/fhir/CodeSystem/referral-status",
            "code": "awaiting-consent",
        }
    ],
    "text": "Awaiting the patient's consent to share with this partner (42 CFR Part 2)",
}
UNASSIGNED_NOTE = "Unassigned: "  # the plan's own record of a referral no partner could take
_PERTAINS_TO_GOAL = "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal"
_ROLES = {
    "patient": ("116154003", "Patient"),
    "case-manager": ("768730001", "Case manager"),
    "psychiatrist": ("80584001", "Psychiatrist"),
    "caregiver": ("133932002", "Caregiver"),
}


@dataclass(slots=True)
class RenderOptions:
    key: str  # plan key: stable ids derive from it
    mode: str  # auto | review
    part2: bool
    requester: str
    case_manager: str
    now: str  # FHIR instant of authoring
    contained: bool = False
    owners: dict[str, Partner | None] = field(default_factory=dict)  # activity key → owner
    unassigned: dict[str, str] = field(default_factory=dict)  # activity key → why it has no owner
    consents: tuple[dict[str, Any], ...] = ()  # the patient's active Consents
    at: datetime | None = None  # when the consents are evaluated (None: ``now``)
    carried: list[str] = field(default_factory=list)  # ServiceRequest refs carried over
    replaces: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Rendered:
    careplan: dict[str, Any]
    goals: list[dict[str, Any]]
    requests: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    careteam: dict[str, Any]

    def resources(self) -> list[dict[str, Any]]:
        """In the order to store them: what is referenced before what references it."""
        return [self.careteam, *self.goals, *self.requests, *self.tasks, self.careplan]


class _Names:
    def __init__(self, options: RenderOptions) -> None:
        self.options = options

    def id(self, kind: str, local: str = "") -> str:
        if self.options.contained:
            return f"{kind.lower()}-{local}" if local else kind.lower()
        return resource_id(self.options.key, kind, local)

    def ref(self, kind: str, local: str = "") -> dict[str, str]:
        if kind == "CarePlan" and self.options.contained:
            return {"reference": "#"}  # a contained resource names its container "#"
        res_id = self.id(kind, local)
        return {"reference": f"#{res_id}" if self.options.contained else f"{kind}/{res_id}"}


def _meta(profiles: list[str], labels: list[dict[str, Any]]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if profiles:
        meta["profile"] = list(profiles)
    if labels:
        meta["security"] = labels
    return meta


def _condition_ref(
    condition: dict[str, Any], holder_labels: list[dict[str, Any]]
) -> dict[str, Any]:
    """The diagnosis's words go only where its labels go (else the reference alone)."""
    code = condition.get("code") or {}
    display = code.get("text") or next(
        (c.get("display") for c in code.get("coding", []) if c.get("display")), None
    )
    return reference_to({"resourceType": "Condition", **condition}, display, holder_labels)


def _labels(activity: ActivityDraft | None, options: RenderOptions) -> list[dict[str, Any]]:
    return activity_labels(activity.sensitivities if activity else set(), part2=options.part2)


# -- goals --------------------------------------------------------------------------------------


def _goal(
    goal: GoalDraft, ctx: DischargeContext, names: _Names, options: RenderOptions
) -> dict[str, Any]:
    d = goal.definition
    targets = [
        {"dueDate": due_date(ctx.discharged_at, t["due"]).isoformat()}
        for t in d.get("target", [])
        if t.get("due")
    ]
    doc: dict[str, Any] = {
        "resourceType": "Goal",
        "id": names.id("Goal", goal.key),
        "meta": _meta(PROFILES["Goal"], _labels(None, options)),
        "lifecycleStatus": "active" if options.mode == "auto" else "proposed",
        "achievementStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/goal-achievement",
                    "code": "in-progress",
                }
            ]
        },
        "category": [d["category"]] if d.get("category") else [],
        "priority": d.get("priority"),
        "description": d.get("description") or {"text": goal.key},
        "subject": {"reference": ctx.patient_ref},
        "startDate": ctx.discharge_date.isoformat(),
        "target": targets,
        "expressedBy": {"reference": options.case_manager},
    }
    return _prune(doc)


# -- requests and tasks -------------------------------------------------------------------------


def _set_path(doc: dict[str, Any], path: str, values: list[Any]) -> None:
    """A dynamicValue: ``priority`` or ``note.text`` style paths; lists stay lists."""
    *parents, leaf = path.split(".")
    node = doc
    for part in parents:
        node = node.setdefault(part, {})
        if isinstance(node, list):
            node = node[0] if node else {}
    if not values:
        return
    node[leaf] = (
        values if (leaf in doc and isinstance(doc[leaf], list)) or len(values) > 1 else values[0]
    )


def _category(activity: ActivityDraft) -> dict[str, Any]:
    return activity.extension("request-category") or {
        "coding": [{"system": _SCT, "code": "3457005", "display": "Patient referral"}]
    }


def _is_sdoh(activity: ActivityDraft) -> bool:
    profile = activity.extension("request-profile") or ""
    return str(profile).startswith(_SDOH)


def _request(
    activity: ActivityDraft,
    ctx: DischargeContext,
    names: _Names,
    options: RenderOptions,
    span: Window | None,
    goals: set[str],
) -> dict[str, Any]:
    d = activity.definition
    owner = options.owners.get(activity.key)
    profile = activity.extension("request-profile")
    doc: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": names.id("ServiceRequest", activity.key),
        "meta": _meta([profile] if profile else [], _labels(activity, options)),
        "extension": [
            {"url": _PERTAINS_TO_GOAL, "valueReference": names.ref("Goal", g)}
            for g in activity.goals
            if g in goals
        ],
        "instantiatesCanonical": [
            f"{activity.url}|{d['version']}" if d.get("version") else activity.url
        ],
        "basedOn": [names.ref("CarePlan")],
        "status": "active" if options.mode == "auto" else "draft",
        "intent": "order",
        "category": [_category(activity)],
        "priority": d.get("priority", "routine"),
        "code": d.get("code"),
        "subject": {"reference": ctx.patient_ref},
        "encounter": {"reference": ctx.encounter_ref} if ctx.encounter_ref else None,
        "occurrencePeriod": span.to_period() if span else None,
        "authoredOn": options.now,
        "requester": {"reference": options.requester},
        "performer": [{"reference": owner.organization, "display": owner.name}] if owner else [],
        "reasonReference": [
            _condition_ref(c, _labels(activity, options)) for c in activity.reasons
        ],
        "patientInstruction": d.get("description"),
    }
    for path, values in activity.dynamic.items():
        _set_path(doc, path, values)
    return _prune(doc)


def _released_to(owner: Partner | None, ctx: DischargeContext, options: RenderOptions) -> bool:
    """May the referral go to its owner? ``privacy.evaluate_consent`` for Part 2 data, the question
    the row policy's grants answer (they cannot tell a permit's labels apart). The referral is
    the owner's treating relationship with the patient: a consent to the class of treating
    providers reaches it when the directory marks it one."""
    if owner is None:
        return False
    at = options.at or datetime.fromisoformat(options.now.replace("Z", "+00:00"))
    decision = evaluate_consent(
        options.consents, patient=ctx.patient_ref, recipient=owner.recipient(), at=at
    )
    return decision.permitted


def _task_status(
    activity: ActivityDraft, ctx: DischargeContext, options: RenderOptions
) -> tuple[str, bool]:
    """(status, waiting for consent): a referral whose labels (or template) need the patient's
    consent waits until the owner is permitted."""
    owner = options.owners.get(activity.key)
    labels = _labels(activity, options)
    gated = activity.requires_consent or needs_consent(labels)
    waiting = gated and not _released_to(owner, ctx, options)
    if options.mode == "review" or waiting:
        return "draft", waiting
    return "requested", False


def is_late(task: dict[str, Any], now: datetime) -> bool:
    """Whether the referral's clinical deadline (restriction.period.end) has already passed."""
    end = ((task.get("restriction") or {}).get("period") or {}).get("end")
    if not isinstance(end, str):
        return False  # no deadline
    try:
        deadline = datetime.fromisoformat(end if "T" in end else f"{end}T23:59:59")
    except ValueError:
        return False  # no deadline, or not one a clock can compare
    return (deadline if deadline.tzinfo else deadline.replace(tzinfo=UTC)) < now


def _task(
    activity: ActivityDraft,
    request: dict[str, Any],
    ctx: DischargeContext,
    names: _Names,
    options: RenderOptions,
    span: Window | None,
) -> dict[str, Any]:
    owner = options.owners.get(activity.key)
    status, waiting = _task_status(activity, ctx, options)
    late = (
        status == "requested"
        and span is not None
        and span.end < datetime.fromisoformat(options.now)
    )
    doc: dict[str, Any] = {
        "resourceType": "Task",
        "id": names.id("Task", activity.key),
        "meta": _meta(
            PROFILES["SdohTask"] if _is_sdoh(activity) else [], _labels(activity, options)
        ),
        "status": status,
        "businessStatus": AWAITING_CONSENT if waiting else None,
        "intent": "order",
        "priority": "urgent"
        if late
        else request.get("priority"),  # sent after its deadline: at once
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]
        },
        "description": activity.title,
        "focus": names.ref("ServiceRequest", activity.key),
        "for": {"reference": ctx.patient_ref},
        "encounter": {"reference": ctx.encounter_ref} if ctx.encounter_ref else None,
        "authoredOn": options.now,
        "lastModified": options.now,
        "requester": {"reference": options.requester},
        "owner": {"reference": owner.organization, "display": owner.name} if owner else None,
        "restriction": {"period": span.to_period()} if span else None,
    }
    return _prune(doc)


# -- care team and plan ------------------------------------------------------------------------


def _role(name: str) -> list[dict[str, Any]]:
    code, display = _ROLES[name]
    return [{"coding": [{"system": _SCT, "code": code, "display": display}]}]


def _careteam(ctx: DischargeContext, names: _Names, options: RenderOptions) -> dict[str, Any]:
    members = [("patient", ctx.patient_ref), ("case-manager", options.case_manager)]
    members += [("psychiatrist", ref) for ref in ctx.attending()]
    members += [("caregiver", f"RelatedPerson/{p['id']}") for p in ctx.related_persons]
    org = options.case_manager if options.case_manager.startswith("Organization/") else None
    doc = {
        "resourceType": "CareTeam",
        "id": names.id("CareTeam"),
        "meta": _meta(PROFILES["CareTeam"], _labels(None, options)),
        "status": "active" if options.mode == "auto" else "proposed",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://loinc.org",
                        "code": "LA28865-6",
                        "display": "Longitudinal care-coordination focused care team",
                    }
                ]
            }
        ],
        "name": f"Care team after discharge of {_patient_name(ctx.patient)}",
        "subject": {"reference": ctx.patient_ref},
        "encounter": {"reference": ctx.encounter_ref} if ctx.encounter_ref else None,
        "period": {"start": ctx.discharge_date.isoformat()},
        "participant": [
            {"role": _role(role), "member": {"reference": ref}} for role, ref in members
        ],
        "managingOrganization": [{"reference": org}] if org else [],
    }
    return _prune(doc)


def _patient_name(patient: dict[str, Any]) -> str:
    for name in patient.get("name", []):
        text = (
            name.get("text") or " ".join([*name.get("given", []), name.get("family", "")]).strip()
        )
        if text:
            return text
    return f"Patient/{patient.get('id')}"


def _narrative(
    ctx: DischargeContext,
    goals: list[dict[str, Any]],
    requests: list[dict[str, Any]],
    tasks: list[dict[str, Any]],
) -> dict[str, str]:
    e = html.escape
    goal_items = "".join(
        f"<li>{e(g['description'].get('text', ''))} (by {e(g['target'][0]['dueDate'] if g.get('target') else '-')})</li>"
        for g in goals
    )
    owners = {
        t["focus"]["reference"]: t.get("owner", {}).get("display", "unassigned") for t in tasks
    }
    rows = "".join(
        f"<tr><td>{e((r.get('code') or {}).get('text', ''))}</td>"
        f"<td>{e(r.get('occurrencePeriod', {}).get('end', '')[:10])}</td>"
        f"<td>{e(owners.get('#' + r['id'], owners.get('ServiceRequest/' + r['id'], 'unassigned')))}</td></tr>"
        for r in requests
    )
    div = (
        '<div xmlns="http://www.w3.org/1999/xhtml">'
        f"<p>Care plan after the discharge of {e(_patient_name(ctx.patient))} on {ctx.discharge_date.isoformat()}</p>"
        f"<p>Goals</p><ul>{goal_items}</ul>"
        f"<table><tr><th>Referral</th><th>Due by</th><th>Partner</th></tr>{rows}</table></div>"
    )
    return {"status": "generated", "div": div}


def _careplan(
    draft: PlanDraft,
    ctx: DischargeContext,
    names: _Names,
    options: RenderOptions,
    goals: list[dict[str, Any]],
    requests: list[dict[str, Any]],
    tasks: list[dict[str, Any]],
) -> dict[str, Any]:
    sensitivities = set().union(*(a.sensitivities for a in draft.activities.values()))
    labels = activity_labels(sensitivities, part2=options.part2)
    root = draft.plans[0]
    own = {key: _labels(a, options) for key, a in draft.activities.items()}
    mixed = len({needs_consent(lbs) for lbs in own.values()}) > 1  # Part 2 beside other care
    activities = [
        _activity(names.ref("ServiceRequest", key), options.unassigned.get(key), options.now)
        for key in draft.activities
    ]
    if mixed:  # DS4P inline labels: which activities are Part 2 (the plan has the high-water mark)
        activities = [
            with_inline_labels(a, lbs) if needs_consent(lbs) else a
            for a, lbs in zip(activities, own.values(), strict=True)
        ]
    activities += [{"reference": {"reference": ref}} for ref in options.carried]
    doc = {
        "resourceType": "CarePlan",
        "id": names.id("CarePlan"),
        "meta": _meta(PROFILES["CarePlan"], labels),
        "text": _narrative(ctx, goals, requests, tasks),
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": options.key}],
        "instantiatesCanonical": [p.get("url") or f"PlanDefinition/{p['id']}" for p in draft.plans],
        "replaces": [{"reference": ref} for ref in options.replaces],
        "status": "active" if options.mode == "auto" else "draft",
        "intent": "plan",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/us/core/CodeSystem/careplan-category",
                        "code": "assess-plan",
                    }
                ]
            }
        ],
        "title": root.get("title"),
        "description": root.get("description"),
        "subject": {"reference": ctx.patient_ref},
        "encounter": {"reference": ctx.encounter_ref} if ctx.encounter_ref else None,
        "period": {"start": ctx.discharge_date.isoformat()},
        "created": options.now,
        "author": {"reference": options.case_manager},
        "careTeam": [names.ref("CareTeam")],
        "addresses": [_condition_ref(c, labels) for c in draft.addresses()],
        "goal": [names.ref("Goal", g.key) for g in draft.used_goals()],
        "activity": activities,
    }
    return _prune(doc)


def _activity(reference: dict[str, str], unassigned: str | None, now: str) -> dict[str, Any]:
    """A plan activity; one no partner could take says why in its progress (an Annotation: the
    activity's own record of how it stands, which the plan's readers see)."""
    activity: dict[str, Any] = {"reference": reference}
    if unassigned:
        activity["progress"] = [{"time": now, "text": UNASSIGNED_NOTE + unassigned}]
    return activity


def render(draft: PlanDraft, ctx: DischargeContext, options: RenderOptions) -> Rendered:
    names = _Names(options)
    goals = [_goal(g, ctx, names, options) for g in draft.used_goals()]
    goal_keys = set(draft.goals)
    requests, tasks = [], []
    for activity in draft.activities.values():
        span = window(ctx.discharged_at, activity.definition)
        request = _request(activity, ctx, names, options, span, goal_keys)
        requests.append(request)
        tasks.append(_task(activity, request, ctx, names, options, span))
    careteam = _careteam(ctx, names, options)
    careplan = _careplan(draft, ctx, names, options, goals, requests, tasks)
    return Rendered(careplan, goals, requests, tasks, careteam)


def _prune(doc: dict[str, Any]) -> dict[str, Any]:
    """Drop empty values: FHIR JSON has no nulls, empty strings, lists or objects."""
    return {k: v for k, v in doc.items() if v not in (None, "", [], {})}
