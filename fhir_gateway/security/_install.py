"""The policy's parts that ride on writes and sessions, and the row policy behind the store."""

from __future__ import annotations

from fhir_gateway import hooks
from fhir_gateway.security import _audit_rows, _consent, _disclosures, _guard, _labels
from fhir_gateway.security._policy import RowPolicy
from fhir_gateway.settings import Settings
from fhir_gateway.store import visibility

__all__ = ["install_policy", "install_row_policy"]


def install_policy(rules: hooks.Rules, settings: Settings) -> None:
    """The write checks (the caller's rights, Part 2 labels), the consent grants and the
    accounting of disclosures at commit."""
    del settings  # the labels read the app's settings from the session (``hooks.settings_of``)
    _disclosures.install(rules)
    rules.before_write(None, _guard.guard_write)
    rules.before_write(None, _labels.label_write)
    rules.after_write("Condition", _labels.label_referrers)
    rules.after_write("AuditEvent", _audit_rows.record_stored)  # an admin's POST joins the trail
    # First: releasing referrals, pushes and notifications that follow a Consent ask the grants.
    rules.after_write("Consent", _consent.refresh_grants, first=True)


def install_row_policy() -> None:
    """The row policy behind the store (``store.visibility``): one stateless object, the same for
    every app in the process: installed once (again would only empty its statement cache)."""
    if not isinstance(visibility.current(), RowPolicy):
        visibility.install(RowPolicy())
