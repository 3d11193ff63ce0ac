"""What a subscriber may see of a resource: the seam to the security layer's redaction.

A notification carries what its subscriber could read through the API, no more: the copy comes
from ``fhir_gateway.security.redact_for(session, caller, resource)`` (None: nothing may be sent,
so the notification is not queued). The subscriber is the Caller that created the Subscription,
kept beside it (``subscription_state.viewer``). The row policy asks ``fhir_gateway.privacy``
(labels, consents), and the copy keeps its security labels in every payload (``_payloads``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.context import SYSTEM, Caller

__all__ = ["caller_to_json", "caller_from_json", "visible_copy", "disclosed"]


def caller_to_json(caller: Caller) -> dict[str, Any]:
    return {
        "client_id": caller.client_id,
        "role": caller.role,
        "organization": caller.organization,
        "scopes": sorted(caller.scopes),
    }


def caller_from_json(data: dict[str, Any] | None) -> Caller:
    if not data:
        return SYSTEM
    return Caller(
        client_id=data["client_id"],
        role=data["role"],
        organization=data.get("organization"),
        scopes=frozenset(data.get("scopes", [])),
    )


def visible_copy(
    session: Session, viewer: Caller, resource: dict[str, Any]
) -> dict[str, Any] | None:
    from fhir_gateway.security import redact_for

    return redact_for(session, viewer, resource)


def disclosed(session: Session) -> list[dict[str, Any]] | None:
    """The Part 2 copies made by ``visible_copy`` since the last call: they travel with the outbox
    row (a revoked consent withdraws it; a delivered one enters the accounting of disclosures)."""
    from fhir_gateway.security import take_disclosures

    return take_disclosures(session)
