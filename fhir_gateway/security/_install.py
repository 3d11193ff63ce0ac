"""Process-wide parts of the policy: the row policy behind the store, and the write hooks."""

from __future__ import annotations

from fhir_gateway import hooks
from fhir_gateway.security import _consent, _disclosures, _guard, _labels
from fhir_gateway.security._policy import RowPolicy
from fhir_gateway.settings import Settings
from fhir_gateway.store import visibility

__all__ = ["install_policy"]


def install_policy(settings: Settings) -> None:
    """Idempotent: the hooks registry ignores a function registered twice."""
    _labels.configure(settings)
    visibility.install(RowPolicy())
    _disclosures.install()
    hooks.on_check(None)(_guard.guard_write)
    hooks.on_check(None)(_labels.label_write)
    hooks.on_stored("Condition")(_labels.label_referrers)
    # First: releasing referrals, pushes and notifications that follow a Consent ask the grants.
    hooks.on_stored("Consent", first=True)(_consent.refresh_grants)
