"""The profile-rule engine: loads the declarative rule sets (``rules.json``), compiles every
FHIRPath expression once, and reports which rules a resource breaks.

A rule set applies to a resource that claims one of its profiles in ``meta.profile``, or, when it
is marked ``gatewayEmitted``, to a resource of its type that the set's ``emittedWhen`` expression
selects (what the gateway itself writes). Bundles are walked: every entry is checked too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fhirpathpy
from fhirpathpy.models import models

__all__ = ["Binding", "Rule", "RuleSet", "Violation", "RuleEngine", "default_engine", "RULES_PATH"]

RULES_PATH = Path(__file__).parent / "rules.json"
_MODEL = models["r4"]

Compiled = Callable[..., list[Any]]


@cache
def _compile(expression: str) -> Compiled:
    return fhirpathpy.compile(expression, model=_MODEL)  # type: ignore[no-any-return]


def _is_true(compiled: Compiled, resource: Mapping[str, Any]) -> bool:
    return compiled(resource, {"resource": resource}) == [True]


@dataclass(frozen=True, slots=True)
class Violation:
    rule_set: str
    rule_id: str
    severity: str  # error | warning
    message: str
    location: str  # e.g. "Task/abc" or "Bundle.entry[2] Task/abc"

    def __str__(self) -> str:
        return f"{self.location} [{self.rule_set} {self.rule_id}] {self.severity}: {self.message}"


@dataclass(frozen=True, slots=True)
class Binding:
    path: Compiled
    systems: frozenset[str]
    codes: frozenset[str]

    def accepts(self, value: Any) -> bool:
        if isinstance(value, str):
            return not self.codes or value in self.codes
        if isinstance(value, Mapping) and "coding" in value:  # CodeableConcept: one coding suffices
            return any(self._coding_ok(c) for c in value["coding"] if isinstance(c, Mapping))
        if isinstance(value, Mapping):
            return self._coding_ok(value)
        return False

    def _coding_ok(self, coding: Mapping[str, Any]) -> bool:
        system_ok = not self.systems or coding.get("system") in self.systems
        return system_ok and (not self.codes or coding.get("code") in self.codes)

    def satisfied_by(self, resource: Mapping[str, Any]) -> bool:
        return all(self.accepts(_plain(v)) for v in self.path(resource, {"resource": resource}))


def _plain(node: Any) -> Any:
    return getattr(node, "data", node)  # fhirpathpy wraps typed nodes (ResourceNode.data)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    message: str
    severity: str
    when: Compiled | None
    expect: Compiled | None
    binding: Binding | None

    def holds(self, resource: Mapping[str, Any]) -> bool:
        if self.when is not None and not _is_true(self.when, resource):
            return True
        if self.binding is not None and not self.binding.satisfied_by(resource):
            return False
        return self.expect is None or _is_true(self.expect, resource)


@dataclass(frozen=True, slots=True)
class RuleSet:
    name: str
    resource_type: str
    profiles: frozenset[str]
    gateway_emitted: bool
    rules: tuple[Rule, ...]

    def check(self, resource: Mapping[str, Any], location: str) -> Iterator[Violation]:
        for rule in self.rules:
            try:
                ok = rule.holds(resource)
            except Exception as exc:  # noqa: BLE001 - a rule that cannot run is reported, not raised
                yield Violation(
                    self.name, rule.id, "error", f"rule could not be evaluated: {exc}", location
                )
                continue
            if not ok:
                yield Violation(self.name, rule.id, rule.severity, rule.message, location)


def _rule(data: Mapping[str, Any]) -> Rule:
    binding = data.get("binding")
    return Rule(
        id=data["id"],
        message=data["message"],
        severity=data.get("severity", "error"),
        when=_compile(data["when"]) if "when" in data else None,
        expect=_compile(data["expect"]) if "expect" in data else None,
        binding=Binding(
            path=_compile(binding["path"]),
            systems=frozenset(binding.get("systems", ())),
            codes=frozenset(binding.get("codes", ())),
        )
        if binding
        else None,
    )


def _rule_set(data: Mapping[str, Any]) -> RuleSet:
    return RuleSet(
        name=data["name"],
        resource_type=data["resourceType"],
        profiles=frozenset(data.get("profiles", ())),
        gateway_emitted=bool(data.get("gatewayEmitted", False)),
        rules=tuple(_rule(r) for r in data["rules"]),
    )


class RuleEngine:
    """Rule sets keyed by resource type; ``violations(resource)`` checks what applies."""

    def __init__(self, rule_sets: Iterable[RuleSet], emitted_when: str | None = None) -> None:
        self.rule_sets = tuple(rule_sets)
        self._by_type: dict[str, list[RuleSet]] = {}
        for rule_set in self.rule_sets:
            self._by_type.setdefault(rule_set.resource_type, []).append(rule_set)
        self._emitted = _compile(emitted_when) if emitted_when else None

    @classmethod
    def from_file(cls, path: Path = RULES_PATH) -> RuleEngine:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls((_rule_set(s) for s in data["ruleSets"]), data.get("emittedWhen"))

    @property
    def profiles(self) -> frozenset[str]:
        return frozenset(p for s in self.rule_sets for p in s.profiles)

    def applicable(self, resource: Mapping[str, Any]) -> list[RuleSet]:
        candidates = self._by_type.get(str(resource.get("resourceType")), [])
        if not candidates:
            return []
        claimed = set((resource.get("meta") or {}).get("profile") or ())
        emitted = self._emitted is not None and _is_true(self._emitted, resource)
        return [s for s in candidates if s.profiles & claimed or (s.gateway_emitted and emitted)]

    def violations(
        self, resource: Mapping[str, Any], location: str | None = None
    ) -> list[Violation]:
        """Every broken rule of ``resource`` and, for a Bundle, of its entries."""
        found: list[Violation] = []
        for where, item in _walk(resource, location):
            for rule_set in self.applicable(item):
                found.extend(rule_set.check(item, where))
        return found

    def errors(self, resource: Mapping[str, Any], location: str | None = None) -> list[Violation]:
        return [v for v in self.violations(resource, location) if v.severity == "error"]


def _walk(
    resource: Mapping[str, Any], location: str | None
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    label = location or f"{resource.get('resourceType')}/{resource.get('id', '(no id)')}"
    yield label, resource
    if resource.get("resourceType") != "Bundle":
        return
    for i, entry in enumerate(resource.get("entry") or ()):
        inner = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(inner, Mapping):
            name = f"{inner.get('resourceType')}/{inner.get('id', '(no id)')}"
            yield from _walk(inner, f"{label} entry[{i}] {name}")


@cache
def default_engine() -> RuleEngine:
    """The engine over the rules shipped with the kit, built once per process."""
    return RuleEngine.from_file()
