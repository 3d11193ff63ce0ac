"""Rules that revise a plan, read from PlanDefinitions (pure: no store, no writes).

A rule PlanDefinition has ``type`` eca-rule (event-condition-action). Each top-level action is a
rule: its ``trigger`` (R4 TriggerDefinition ``data-added``/``data-modified`` with a
DataRequirement: the resource type and, optionally, a ``codeFilter`` on ``code`` or ``category``)
says which stored results it looks at; its ``condition``s (FHIRPath, ``%resource`` the stored
result) say when it fires; its ``code`` (monitor-flags) raises that alert at once, with its
``priority``; its nested actions' ``definitionCanonical`` name the ActivityDefinitions to add to
the patient's active plan. Every expression is compiled once, when the rules are built from a
stored version (``PlanRules`` is cached per stored version of the definitions).

A result that records why it has no value (``dataAbsentReason``: an unanswered item) never fires
a rule, whatever the condition says: an unanswered suicide question is not a negative one, and not
a positive one either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import fhirpathpy
from fhirpathpy.models import models

from fhir_gateway.careplans import TemplateError

__all__ = ["PlanRule", "PlanRules", "Firing", "build_rules", "is_rule_plan", "RULE_TYPE"]

RULE_TYPE = ("http://terminology.hl7.org/CodeSystem/plan-definition-type", "eca-rule")
_TRIGGER_KINDS = frozenset({"data-added", "data-modified", "data-changed"})
_FILTER_PATHS = frozenset({"code", "category"})
_PRIORITY = {"stat": "PH", "asap": "PH", "urgent": "PM", "routine": "PL"}
_MAX_RULES = 200  # actions of all rule PlanDefinitions together: a bound on every stored write
_R4 = models["r4"]

Compiled = Callable[..., list[Any]]


@dataclass(frozen=True, slots=True)
class PlanRule:
    plan: str  # PlanDefinition/id|version: where the rule is written
    action_id: str
    title: str
    res_type: str
    path: str | None  # the codeFilter's path (code | category), None: any resource of the type
    codes: frozenset[tuple[str, str]]
    conditions: tuple[tuple[str, Compiled], ...]
    alert: tuple[str, ...]  # monitor-flags codes of the alert raised at once (empty: none)
    priority: str  # Flag priority PH | PM | PL
    activities: tuple[str, ...]  # canonical URLs of the ActivityDefinitions to add

    def matches(self, resource: dict[str, Any]) -> bool:
        if resource.get("resourceType") != self.res_type or self.path is None:
            return resource.get("resourceType") == self.res_type
        value = resource.get(self.path)
        concepts = value if isinstance(value, list) else [value]
        return any(
            (c.get("system", ""), c.get("code", "")) in self.codes
            for concept in concepts
            if isinstance(concept, dict)
            for c in concept.get("coding", [])
            if isinstance(c, dict)
        )

    def holds(self, resource: dict[str, Any]) -> bool:
        """All conditions true (a single ``true``; empty, false or several values are not)."""
        for text, fn in self.conditions:
            try:
                result = list(fn({}, {"resource": resource}))
            except Exception as exc:  # fhirpathpy raises bare Exceptions of several kinds
                raise TemplateError(
                    f"FHIRPath {text!r} of rule {self.action_id} failed: {exc}"
                ) from exc
            if result != [True]:
                return False
        return True


@dataclass(frozen=True, slots=True)
class Firing:
    rule: PlanRule
    resource: dict[str, Any]


@dataclass(slots=True)
class PlanRules:
    rules: list[PlanRule] = field(default_factory=list)

    @property
    def types(self) -> frozenset[str]:
        return frozenset(r.res_type for r in self.rules)

    def fired(self, resource: dict[str, Any]) -> list[Firing]:
        """The rules this stored result fires (none for one without a value)."""
        if not answered(resource):
            return []
        return [
            Firing(r, resource) for r in self.rules if r.matches(resource) and r.holds(resource)
        ]


def answered(resource: dict[str, Any]) -> bool:
    """A result that says why it has no value (dataAbsentReason), here or in a component whose
    value is all it has, is unanswered; a retracted one (entered-in-error) is no result."""
    if "dataAbsentReason" in resource or resource.get("status") == "entered-in-error":
        return False
    verification = {
        c.get("code") for c in (resource.get("verificationStatus") or {}).get("coding", [])
    }
    return not verification & {"entered-in-error", "refuted"}


def is_rule_plan(doc: dict[str, Any]) -> bool:
    return doc.get("resourceType") == "PlanDefinition" and any(
        (c.get("system"), c.get("code")) == RULE_TYPE
        for c in (doc.get("type") or {}).get("coding", [])
    )


def _compile(text: str, where: str) -> Compiled:
    """Compiled, and tried once on an empty result: fhirpathpy reports most syntax errors only
    when an expression first runs, and a rule must fail when it is written, not at a screening."""
    try:
        fn = fhirpathpy.compile(text, model=_R4)
        fn({}, {"resource": {}})
    except Exception as exc:  # the parser raises bare Exceptions of several kinds
        raise TemplateError(f"FHIRPath of rule {where} does not parse: {text!r}: {exc}") from exc
    return fn  # type: ignore[no-any-return]


def _trigger(action: dict[str, Any], where: str) -> tuple[str, str | None, frozenset[Any]]:
    for trigger in action.get("trigger", []):
        if trigger.get("type") not in _TRIGGER_KINDS:
            continue
        for data in trigger.get("data", []):
            filters = data.get("codeFilter") or []
            if not filters:
                return str(data.get("type")), None, frozenset()
            path = filters[0].get("path")
            if path not in _FILTER_PATHS:
                raise TemplateError(f"Rule {where}: codeFilter path must be code or category")
            codes = {(c.get("system", ""), c.get("code", "")) for c in filters[0].get("code", [])}
            return str(data.get("type")), str(path), frozenset(codes)
    raise TemplateError(f"Rule {where} has no data-added trigger naming a resource type")


def _rule(plan: dict[str, Any], action: dict[str, Any]) -> PlanRule:
    where = f"PlanDefinition/{plan.get('id')}#{action.get('id')}"
    res_type, path, codes = _trigger(action, where)
    conditions = tuple(
        (text, _compile(text, where))
        for c in action.get("condition", [])
        if c.get("kind") == "applicability"
        and (text := (c.get("expression") or {}).get("expression"))
    )
    alert = tuple(
        str(c["code"]) for concept in action.get("code", []) for c in concept.get("coding", [])
    )
    return PlanRule(
        plan=f"PlanDefinition/{plan.get('id')}|{plan.get('version', '')}",
        action_id=str(action.get("id") or where),
        title=str(action.get("title") or action.get("id") or where),
        res_type=res_type,
        path=path,
        codes=codes,
        conditions=conditions,
        alert=alert,
        priority=_PRIORITY.get(str(action.get("priority", "urgent")), "PM"),
        activities=tuple(
            str(a["definitionCanonical"]).split("|", 1)[0]
            for a in action.get("action", [])
            if a.get("definitionCanonical")
        ),
    )


def build_rules(plans: list[dict[str, Any]]) -> PlanRules:
    """The rules of the active rule PlanDefinitions (sorted by id: a stable order of effects)."""
    rules = PlanRules()
    for plan in sorted(plans, key=lambda p: str(p.get("id"))):
        if not is_rule_plan(plan) or plan.get("status") != "active":
            continue
        for action in plan.get("action", []):
            rules.rules.append(_rule(plan, action))
            if len(rules.rules) > _MAX_RULES:
                raise TemplateError(f"More than {_MAX_RULES} plan rules: split or trim them")
    return rules
