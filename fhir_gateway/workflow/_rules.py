"""The check on every write of a referral Task (REST PUT/PATCH/DELETE, transaction entries, the
gateway's own writes): the state machine, the rights of requester and owner, and the claim of an
unassigned Task. Illegal transitions are refused (422 naming the allowed next states); a change
the caller has no right to is refused (403); a missing statusReason is only a warning.

Who is who, from the Caller:
- role ``system`` is the gateway itself (intake, care-plan engine, workers, and every API call
  while no authentication is configured): every transition is bound by the state machine, but it
  has both sides' rights and may create a Task in any state (recording a referral that exists
  elsewhere);
- roles ``admin`` and ``case-manager`` act for the requester;
- role ``partner`` acts for ``caller.organization``: the owner when it owns the Task, a claimant
  when the Task has no owner, nobody otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_gateway.context import Caller
from fhir_gateway.errors import (
    BusinessRule,
    Forbidden,
    Issue,
    PreconditionFailed,
    PreconditionRequired,
)
from fhir_gateway.hooks import WriteEvent
from fhir_gateway.workflow._partners import eligible_organizations
from fhir_gateway.workflow._referrals import is_referral, read, ref
from fhir_gateway.workflow._states import (
    OWNER_FIELDS,
    REASON_EXPECTED,
    Side,
    allowed_next,
    is_legal,
    who_sets,
)

__all__ = ["check_task", "Actor", "actor_of", "changed_fields"]

_BOOKKEEPING = frozenset({"meta", "lastModified", "text"})  # server- or tool-maintained
REQUESTER_ROLES = frozenset({"admin", "case-manager"})


@dataclass(frozen=True, slots=True)
class Actor:
    trusted: bool = False
    requester: bool = False
    organization: str | None = None  # a partner's organisation


def actor_of(caller: Caller) -> Actor:
    if caller.role == "system":
        return Actor(trusted=True)
    if caller.role in REQUESTER_ROLES:
        return Actor(requester=True)
    if caller.role == "partner" and caller.organization:
        return Actor(organization=caller.organization)
    return Actor()


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    keys = (set(before) | set(after)) - _BOOKKEEPING - {"id", "resourceType"}
    return {k for k in keys if before.get(k) != after.get(k)}


def check_task(event: WriteEvent) -> list[Issue]:
    before = event.before.content if event.before is not None else None
    after = event.after
    if not (is_referral(before) or is_referral(after)):
        return []
    actor = actor_of(event.caller)
    if after is None:
        _check_delete(actor)
        return []
    if before is None:
        _check_create(actor, after)
    else:
        _check_change(event, actor, before, after)
    return _warnings(before, after)


def _check_delete(actor: Actor) -> None:
    if not (actor.trusted or actor.requester):
        raise Forbidden(
            "Only the requester may delete a referral Task; mark it entered-in-error instead"
        )


def _check_create(actor: Actor, after: dict[str, Any]) -> None:
    if actor.trusted:
        return  # the gateway itself may record a referral as it stands elsewhere (an import)
    status = after.get("status")
    if not is_legal(None, status):
        raise BusinessRule(
            f"A new referral Task cannot be {status}; it may be: {_list(allowed_next(None))}",
            expression=["Task.status"],
        )
    if not (actor.trusted or actor.requester):
        raise Forbidden("Only the requester creates referral Tasks")


def _check_change(
    event: WriteEvent, actor: Actor, before: dict[str, Any], after: dict[str, Any]
) -> None:
    old, new = before.get("status"), after.get("status")
    if old != new and not is_legal(old, new):
        allowed = allowed_next(old)
        raise BusinessRule(
            f"Task/{before.get('id')}: {old} → {new} is not allowed; from {old} the next status may be: "
            f"{_list(allowed) if allowed else 'none (it is final)'}",
            expression=["Task.status"],
        )
    if actor.trusted:
        return
    if actor.requester:
        _require_side(Side.REQUESTER, old, new)
        return
    owner = ref(before, "owner")
    if actor.organization is not None and owner == actor.organization:
        _check_owner_change(before, after, old, new)
    elif actor.organization is not None and owner is None:
        _check_claim(event, actor.organization, before, after)
    elif actor.organization is not None and ref(after, "owner") == actor.organization:
        raise PreconditionFailed(f"Task/{before.get('id')} was claimed by another partner first")
    else:
        raise Forbidden("Only the Task's requester or owner may change it")


def _require_side(side: Side, old: str | None, new: str | None) -> None:
    if old != new and side not in who_sets(str(new)):
        who = "owner (the partner)" if side is Side.REQUESTER else "requester"
        raise Forbidden(
            f"Only the {who} may set a referral Task to {new}", expression=["Task.status"]
        )


def _check_owner_change(
    before: dict[str, Any], after: dict[str, Any], old: str | None, new: str | None
) -> None:
    extra = sorted(changed_fields(before, after) - OWNER_FIELDS)
    if extra:
        raise Forbidden(
            "The owner may change only status, statusReason, businessStatus and output, not "
            + ", ".join(extra),
            expression=[f"Task.{f}" for f in extra],
        )
    _require_side(Side.OWNER, old, new)


def _check_claim(
    event: WriteEvent, organization: str, before: dict[str, Any], after: dict[str, Any]
) -> None:
    """An unassigned Task is claimed with one change: owner = the claimant and status accepted."""
    if (
        ref(after, "owner") != organization
        or after.get("status") != "accepted"
        or before.get("status") != "requested"
    ):
        raise Forbidden(
            "An unassigned referral can only be claimed: set owner to your organisation and status "
            "accepted in one change, while it is requested",
            expression=["Task.owner", "Task.status"],
        )
    extra = sorted(changed_fields(before, after) - OWNER_FIELDS - {"owner"})
    if extra:
        raise Forbidden(
            "A claim may change only owner, status, statusReason, businessStatus and output, not "
            + ", ".join(extra),
            expression=[f"Task.{f}" for f in extra],
        )
    if event.if_match is None:
        raise PreconditionRequired(
            "A claim must be conditional: send If-Match with the version you read"
        )
    request = read(event.session, ref(before, "focus")) or {}
    if organization not in {org for org, _ in eligible_organizations(event.session, request)}:
        raise Forbidden(
            f"{organization} is not an eligible partner for this referral",
            expression=["Task.owner"],
        )


def _warnings(before: dict[str, Any] | None, after: dict[str, Any]) -> list[Issue]:
    status = after.get("status")
    changed = before is None or before.get("status") != status
    if changed and status in REASON_EXPECTED and not after.get("statusReason"):
        return [
            Issue(
                f"A referral Task that is {status} should say why (statusReason), as the SDOH Clinical Care IG asks",
                code="business-rule",
                severity="warning",
                expression=["Task.statusReason"],
            )
        ]
    return []


def _list(statuses: frozenset[str]) -> str:
    return ", ".join(sorted(statuses))
