"""Declarative profile rules (``rules.json``) for what the gateway emits, and their engine."""

from __future__ import annotations

from conformance.profiles.engine import (
    RULES_PATH,
    Binding,
    Rule,
    RuleEngine,
    RuleSet,
    Violation,
    default_engine,
)

__all__ = ["RULES_PATH", "Binding", "Rule", "RuleEngine", "RuleSet", "Violation", "default_engine"]
