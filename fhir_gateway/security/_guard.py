"""Write rules of the security policy, as checks on the write hooks (fhir_gateway.hooks):

* AuditEvents are append-only: no update, patch or delete through the API, for anyone (the
  gateway writes them itself, not through this path).
* A caller outside the care-coordination team may change only what it can see: a write on a
  resource hidden from it is refused the same way whether it exists or not.
* A partner may not hand a Task to another organisation (``owner`` stays its own or empty); which
  fields it may change is the referral workflow's business.
"""

from __future__ import annotations

from typing import Any

from fhir_gateway.errors import Forbidden
from fhir_gateway.hooks import WriteEvent
from fhir_gateway.store import visibility

__all__ = ["guard_write"]


def guard_write(event: WriteEvent) -> None:
    """on_check(None)."""
    caller = event.caller
    if event.res_type == "AuditEvent" and event.interaction != "create" and caller.role != "system":
        raise Forbidden("AuditEvents are append-only: they cannot be changed or deleted")
    if not visibility.current().restricted(caller):
        return None
    before = event.before
    if before is not None and not visibility.is_visible(
        event.session, caller, before.res_type, before.res_id
    ):
        raise Forbidden(f"Not permitted: {event.interaction} on {event.res_type}")
    if caller.role == "partner" and event.res_type == "Task" and event.after is not None:
        _owner_stays(event.after, caller.organization)
    return None


def _owner_stays(task: dict[str, Any], organization: str | None) -> None:
    owner = (task.get("owner") or {}).get("reference")
    if owner not in (None, organization):
        raise Forbidden(
            "A partner may not assign a Task to another organization", expression=["Task.owner"]
        )
