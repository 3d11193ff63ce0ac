"""The coded reasons and outcomes the inbox offers, as the workflow defines them
(``workflow._outcomes``: the gateway's referral-reject-reason and referral-outcome code systems).
Re-exported here for the pages' templates and for callers of ``fhir_gateway.web``."""

from __future__ import annotations

from fhir_gateway.workflow import (
    CLOSE_REASONS,
    COMPLETE_OUTCOMES,
    OUTCOME_SYSTEM,
    REJECT_REASONS,
    REJECT_SYSTEM,
    reject_reason,
)

__all__ = [
    "CLOSE_REASONS",
    "COMPLETE_OUTCOMES",
    "OUTCOME_SYSTEM",
    "REJECT_REASONS",
    "REJECT_SYSTEM",
    "reject_reason",
]
