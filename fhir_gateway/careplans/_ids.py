"""Stable ids for stored plan resources: the same discharge always names the same resources, so a
concurrent duplicate meets the primary key (409, retried) instead of making a second plan. Keyed
with the installation's secret: a partner cannot derive the id of a referral hidden from it."""

from __future__ import annotations

import uuid

from fhir_gateway.store.keyed_ids import keyed_id

__all__ = ["plan_key", "resource_id", "IDENTIFIER_SYSTEM"]

_NAMESPACE = uuid.UUID("6f1c2a8e-5b0e-4b8f-9a43-2d1f6c0e7a11")
IDENTIFIER_SYSTEM = "urn:fhir-gateway:careplan"  # CarePlan.identifier: which discharge made it


def plan_key(encounter: str, generation: int) -> str:
    """``Encounter/1#0``: the first plan of that discharge; ``#1`` after an A13 and a new A03."""
    return f"{encounter}#{generation}"


def resource_id(key: str, kind: str, local: str = "") -> str:
    return keyed_id(_NAMESPACE, f"{key}|{kind}|{local}")
