"""Write rules of the security policy, as checks on the write hooks (fhir_gateway.hooks):

* AuditEvents are append-only: no update, patch or delete through the API, for anyone (the
  gateway writes them itself, not through this path).
* A caller outside the care-coordination team may change only what it can see: a write on a
  resource hidden from it is refused the same way whether it exists or not.
* A partner may not hand a Task to another organisation (``owner`` stays its own or empty); which
  fields it may change is the referral workflow's business.
* A partner may write only a warning-signs report of its own about a patient it treats
  (``_treating``, ``privacy.treating_partner_relapse_rule``).
* A caller outside the team may not change an Organization of the partner directory (one that
  provides a HealthcareService or manages an Endpoint) or of another registered client: those
  decide where referrals and notifications go. Its own Organization it may keep up to date.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from fhir_gateway.context import Caller
from fhir_gateway.errors import Forbidden
from fhir_gateway.hooks import WriteEvent
from fhir_gateway.security._treating import guard_partner_response
from fhir_gateway.store import visibility
from fhir_gateway.store.security_tables import auth_clients
from fhir_gateway.store.tables import idx_reference

__all__ = ["guard_write"]


def guard_write(event: WriteEvent) -> None:
    """before_write(None)."""
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
    if caller.role == "partner" and event.res_type == "QuestionnaireResponse" and event.after:
        guard_partner_response(event)
    if event.res_type == "Organization" and _someone_elses(event, caller):
        raise Forbidden(
            f"Not permitted: {event.interaction} on an Organization of the partner directory"
        )
    return None


def _someone_elses(event: WriteEvent, caller: Caller) -> bool:
    res_id = event.before.res_id if event.before is not None else (event.after or {}).get("id")
    if not isinstance(res_id, str) or f"Organization/{res_id}" == caller.organization:
        return False
    return _directory_organization(event.session, res_id)


def _directory_organization(session: Session, res_id: str) -> bool:
    linked = exists().where(
        idx_reference.c.res_type.in_(("HealthcareService", "Endpoint")),
        idx_reference.c.param == "organization",
        idx_reference.c.target_type == "Organization",
        idx_reference.c.target_id == res_id,
    )
    client = exists().where(auth_clients.c.organization == f"Organization/{res_id}")
    return bool(session.execute(select(or_(linked, client))).scalar())


def _owner_stays(task: dict[str, Any], organization: str | None) -> None:
    owner = (task.get("owner") or {}).get("reference")
    if owner not in (None, organization):
        raise Forbidden(
            "A partner may not assign a Task to another organization", expression=["Task.owner"]
        )
