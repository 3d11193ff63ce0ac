"""Templates + discharge context → a plan draft (pure: no store, no ids, no statuses).

The walk follows R4 PlanDefinition semantics: an action applies when all of its applicability
conditions are true; ``definitionCanonical`` names an ActivityDefinition (one request) or a nested
PlanDefinition (walked in turn). Two conventions, documented in ``mappings/careplans/README.md``:
a grouping action's ``dynamicValue``s apply to every request below it (a nearer one wins), and
``goalId`` may name a goal of any PlanDefinition on the path (the root's goals are shared).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_gateway.careplans._context import DischargeContext
from fhir_gateway.careplans._fhirpath import TemplateError, evaluate, is_true
from fhir_gateway.careplans._templates import TemplateSet

__all__ = ["GoalDraft", "ActivityDraft", "PlanDraft", "draft_plan", "applicable", "EXT"]

EXT = "http://fhir-gateway.org/fhir/StructureDefinition"
_MAX_DEPTH = 8


@dataclass(slots=True)
class GoalDraft:
    key: str
    definition: dict[str, Any]


@dataclass(slots=True)
class ActivityDraft:
    key: str  # the ActivityDefinition's id: one request per definition and plan
    definition: dict[str, Any]
    goals: list[str] = field(default_factory=list)
    reasons: list[dict[str, Any]] = field(default_factory=list)  # Conditions
    sensitivities: set[str] = field(default_factory=set)
    dynamic: dict[str, list[Any]] = field(default_factory=dict)  # path → values

    @property
    def url(self) -> str:
        return str(self.definition.get("url") or f"ActivityDefinition/{self.definition['id']}")

    @property
    def title(self) -> str:
        return str(self.definition.get("title") or self.definition.get("name") or self.key)

    def extension(self, name: str) -> Any:
        for ext in self.definition.get("extension", []):
            if ext.get("url") == f"{EXT}/{name}":
                return next((v for k, v in ext.items() if k.startswith("value")), None)
        return None

    @property
    def requires_consent(self) -> bool:
        return self.extension("requires-consent") is True

    def service_codes(self) -> set[tuple[str, str]]:
        return {
            (c.get("system", ""), c.get("code", ""))
            for c in (self.definition.get("code") or {}).get("coding", [])
        }


@dataclass(slots=True)
class PlanDraft:
    plans: list[dict[str, Any]] = field(default_factory=list)  # every PlanDefinition applied
    goals: dict[str, GoalDraft] = field(default_factory=dict)
    activities: dict[str, ActivityDraft] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.activities

    def addresses(self) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for activity in self.activities.values():
            for condition in activity.reasons:
                seen.setdefault(condition["id"], condition)
        return list(seen.values())

    def used_goals(self) -> list[GoalDraft]:
        return list(self.goals.values())


@dataclass(slots=True)
class _Scope:
    dynamic: dict[str, list[Any]]
    sensitivities: frozenset[str]
    depth: int


def applicable(action: dict[str, Any], variables: dict[str, Any]) -> bool:
    for condition in action.get("condition", []):
        if condition.get("kind") != "applicability":
            continue
        expr = (condition.get("expression") or {}).get("expression")
        if expr and not is_true(expr, variables):
            return False
    return True


def _sensitivity(plan: dict[str, Any]) -> set[str]:
    return {
        e["valueCode"]
        for e in plan.get("extension", [])
        if e.get("url") == f"{EXT}/sensitivity" and e.get("valueCode")
    }


def _dynamic(node: dict[str, Any], variables: dict[str, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for dv in node.get("dynamicValue", []):
        expr = (dv.get("expression") or {}).get("expression")
        if dv.get("path") and expr:
            out[dv["path"]] = evaluate(expr, variables)
    return out


class _Walker:
    def __init__(self, templates: TemplateSet, ctx: DischargeContext) -> None:
        self.templates = templates
        self.variables = ctx.variables()
        self.draft = PlanDraft()

    def plan(self, plan: dict[str, Any], scope: _Scope) -> None:
        if scope.depth > _MAX_DEPTH:
            raise TemplateError(f"PlanDefinition/{plan.get('id')} nests too deep (a cycle?)")
        index, before = len(self.draft.plans), len(self.draft.activities)
        self.draft.plans.append(plan)
        inner = _Scope(scope.dynamic, scope.sensitivities | _sensitivity(plan), scope.depth + 1)
        self.actions(plan, plan.get("action", []), inner)
        if len(self.draft.activities) == before:
            del self.draft.plans[index]  # nothing of it applied: not part of the plan

    def actions(self, plan: dict[str, Any], actions: list[dict[str, Any]], scope: _Scope) -> None:
        for action in actions:
            if not applicable(action, self.variables):
                continue
            here = _Scope(
                {**scope.dynamic, **_dynamic(action, self.variables)},
                scope.sensitivities,
                scope.depth,
            )
            if action.get("definitionCanonical"):
                target = self.templates.resolve(
                    action["definitionCanonical"], plan.get("contained")
                )
                if target["resourceType"] == "PlanDefinition":
                    self.plan(target, here)
                else:
                    self.activity(target, action, here)
            self.actions(plan, action.get("action", []), here)

    def activity(self, definition: dict[str, Any], action: dict[str, Any], scope: _Scope) -> None:
        dynamic = {**scope.dynamic, **_dynamic(definition, self.variables)}
        reasons = [
            r for r in dynamic.pop("reasonReference", []) if isinstance(r, dict) and r.get("id")
        ]
        draft = self.draft.activities.get(definition["id"])
        if draft is None:
            draft = ActivityDraft(definition["id"], definition, dynamic=dynamic)
            self.draft.activities[definition["id"]] = draft
        draft.sensitivities |= scope.sensitivities
        draft.goals.extend(g for g in action.get("goalId", []) if g not in draft.goals)
        known = {r["id"] for r in draft.reasons}
        draft.reasons.extend(r for r in reasons if r["id"] not in known)


def draft_plan(
    templates: TemplateSet, ctx: DischargeContext, roots: list[dict[str, Any]]
) -> PlanDraft:
    walker = _Walker(templates, ctx)
    for root in roots:
        walker.plan(root, _Scope({}, frozenset(), 0))
    draft = walker.draft
    if draft.empty:
        return PlanDraft()
    for plan in draft.plans:  # every goal of a contributing plan, root first
        for goal in plan.get("goal", []):
            if goal.get("id"):
                draft.goals.setdefault(goal["id"], GoalDraft(goal["id"], goal))
    return draft
