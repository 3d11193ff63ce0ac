"""The IG's "direct" pattern, for partners that run their own FHIR server (an Endpoint in the
directory): a Task that becomes ``requested`` for such a partner is pushed there with its
ServiceRequest (a transaction Bundle, through the outbox, so the push is as durable as the change;
the row names the Task version, and the worker builds the Bundle with the partner's rights as it
sends it),
and the partner's status changes are followed by polling its server and mirrored back here as
that partner, through the same state machine and rights as a change made on the gateway's API.
Partners without a server use the gateway's API ("light" pattern) and need nothing from here."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson
from sqlalchemy.orm import Session

from adapters.partners import PartnerClient, PartnerError
from fhir_gateway import privacy
from fhir_gateway.context import Caller
from fhir_gateway.errors import GatewayError
from fhir_gateway.fhir.references import iter_references
from fhir_gateway.services import resources as svc
from fhir_gateway.settings import Settings
from fhir_gateway.store import outbox
from fhir_gateway.store import repository as repo
from fhir_gateway.store.db import Database
from fhir_gateway.store.repository import StoredResource
from fhir_gateway.workflow._partners import endpoint_of
from fhir_gateway.workflow._referrals import read, ref, search
from fhir_gateway.workflow._states import OWNER_FIELDS, Side, allowed_next, who_sets

__all__ = [
    "PUSH_CHANNEL",
    "push_bundle",
    "push",
    "push_payload",
    "poll_partners",
    "partner_caller",
    "steps_between",
]

log = logging.getLogger("fhir_gateway.workflow.direct")
_FOLLOWED = "requested,accepted,in-progress,on-hold"
PUSH_CHANNEL = "partner-push"


def partner_caller(organization: str) -> Caller:
    """The partner as the gateway acts for it when mirroring its server's changes (Task updates only)."""
    scopes = frozenset({"system/Task.rus", "system/ServiceRequest.rs", "system/Patient.rs"})
    return Caller(
        client_id=f"partner-sync:{organization}",
        role="partner",
        organization=organization,
        scopes=scopes,
    )


def _absolute(doc: dict[str, Any], base_url: str, keep: set[str]) -> dict[str, Any]:
    """References the partner cannot resolve on its own server point back at the gateway. Of
    ``meta`` only the security labels and the disclosure notice go along: they say what the
    partner may do with the copy."""
    copy = orjson.loads(orjson.dumps(doc))
    copy.pop("meta", None)
    meta = privacy.travelling_meta(doc, base_url)
    if meta:
        copy["meta"] = meta
    if base_url:
        for node, key in iter_references(copy):
            if "/" in node[key] and "://" not in node[key] and node[key] not in keep:
                node[key] = f"{base_url}/{node[key]}"
    return copy


def push_bundle(task: dict[str, Any], request: dict[str, Any], base_url: str) -> dict[str, Any]:
    """A transaction Bundle that creates or replaces the Task and its ServiceRequest at the partner."""
    request_ref = f"ServiceRequest/{request['id']}"
    entries = [
        {
            "resource": _absolute(doc, base_url, {request_ref}),
            "request": {"method": "PUT", "url": f"{doc['resourceType']}/{doc['id']}"},
        }
        for doc in (request, task)
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def push(
    session: Session,
    stored: StoredResource,
    base_url: str,
    endpoints: dict[str, str | None] | None = None,
) -> int | None:
    """Queue the push of a Task version to its owner's FHIR server; None if it has none. The row
    names the Task version only: the worker builds what goes (``push_payload``) when it sends.
    ``endpoints``: the owners' endpoints already looked up (by a batch of Tasks), added to."""
    del base_url  # the worker's own, when it builds the Bundle
    row = push_row(session, stored, endpoints if endpoints is not None else {})
    return outbox.enqueue(session, **row) if row is not None else None


def push_row(
    session: Session, stored: StoredResource, endpoints: dict[str, str | None]
) -> dict[str, Any] | None:
    """The outbox row that pushes this Task version to its owner's FHIR server (for a batch of
    Tasks queued in one ``outbox.enqueue_many``); None if the owner has none. ``endpoints``: the
    owners' endpoints already looked up, added to."""
    owner = ref(stored.content, "owner")
    if owner is None:
        return None
    if owner not in endpoints:
        endpoints[owner] = endpoint_of(session, owner)
    endpoint = endpoints[owner]
    if endpoint is None:
        return None
    return {
        "channel": PUSH_CHANNEL,
        "method": "POST",
        "url": endpoint,
        "body": b"",
        "content_type": "application/fhir+json",
        "focus": f"Task/{stored.res_id}/_history/{stored.version_id}",
    }


def push_payload(
    session: Session, focus: str, base_url: str
) -> tuple[bytes, list[dict[str, Any]] | None] | str:
    """What a queued push sends (the Bundle, and the disclosures it makes), built as it goes out
    with the partner's rights then; or why nothing goes (the partner may not see it, it is gone)."""
    from fhir_gateway import security

    task_type, task_id, _, version = (focus.split("/") + ["", "", ""])[:4]
    stored = repo.vread(session, "Task", task_id, int(version)) if version.isdigit() else None
    if task_type != "Task" or stored is None or stored.deleted:
        return "the referral Task is no longer there"
    owner, found = ref(stored.content, "owner"), read(session, ref(stored.content, "focus"))
    if owner is None or found is None:
        return "the referral has no partner or no ServiceRequest any more"
    viewer = security.partner_caller(owner)  # the partner gets what it could read here, no more
    task, request = (
        security.redact_for(session, viewer, stored.content),
        security.redact_for(session, viewer, found),
    )
    disclosures = security.take_disclosures(session)
    if task is None or request is None:
        return "the partner may no longer see this referral"  # nothing goes: nothing disclosed
    return orjson.dumps(push_bundle(task, request, base_url)), disclosures or None


# -- following the partner's changes --------------------------------------------------------------


def _followed(session: Session) -> list[tuple[dict[str, Any], int, str]]:
    out = []
    for task in search(session, "Task", [("status", _FOLLOWED), ("owner:missing", "false")]):
        endpoint = endpoint_of(session, ref(task, "owner"))
        stored = repo.read(session, "Task", task["id"])
        if endpoint and stored is not None:
            out.append((task, stored.version_id, endpoint))
    return out


def steps_between(old: str | None, new: str) -> list[str]:
    """The owner's shortest legal path from ``old`` to ``new``: a poll sees only where the partner
    is now (requested → completed is accepted, then completed)."""
    frontier: list[list[str]] = [[]]
    seen = {old}
    while frontier:
        path = frontier.pop(0)
        here = path[-1] if path else old
        for nxt in sorted(allowed_next(here)):
            if nxt in seen or Side.OWNER not in who_sets(nxt):
                continue
            if nxt == new:
                return [*path, nxt]
            seen.add(nxt)
            frontier.append([*path, nxt])
    return [new]  # no legal path: let the state machine refuse it


def _mirror(session: Session, task_id: str, version: int, remote: dict[str, Any]) -> bool:
    current = repo.read(session, "Task", task_id)
    if current is None or current.deleted or current.version_id != version:
        return False  # changed here meanwhile: look again at the next poll
    caller = partner_caller(ref(current.content, "owner") or "")
    base = {k: v for k, v in current.content.items() if k not in OWNER_FIELDS}
    steps = steps_between(
        current.content.get("status"), remote.get("status", current.content["status"])
    )
    for status in steps[:-1]:  # the states the partner passed through, status only
        current = svc.update(
            session,
            "Task",
            task_id,
            {**current.content, "status": status},
            caller,
            if_match=current.version_id,
        ).stored  # type: ignore[assignment]
        assert current is not None
    doc = {**base, **{k: remote[k] for k in OWNER_FIELDS if k in remote}}
    result = svc.update(session, "Task", task_id, doc, caller, if_match=current.version_id)
    return result.stored is not None and result.stored.version_id != version


def poll_partners(
    database: Database, settings: Settings, *, transport: httpx.BaseTransport | None = None
) -> int:
    """Read each followed Task from its partner's server and mirror what changed; returns how many."""
    followed = database.read(_followed)
    changed = 0
    clients: dict[str, PartnerClient] = {}
    try:
        for task, version, endpoint in followed:
            client = clients.setdefault(
                endpoint,
                PartnerClient(endpoint, transport=transport, timeout=settings.partner_timeout),
            )
            changed += _poll_one(database, client, task, version)
    finally:
        for client in clients.values():
            client.close()
    return changed


def _poll_one(database: Database, client: PartnerClient, task: dict[str, Any], version: int) -> int:
    try:
        remote = client.read("Task", task["id"])
    except PartnerError as exc:
        log.warning("partner %s: Task/%s not read: %s", client.base_url, task["id"], exc)
        return 0
    if remote is None or all(remote.get(k) == task.get(k) for k in OWNER_FIELDS):
        return 0
    try:
        return int(database.write(_mirror, task["id"], version, remote))
    except GatewayError as exc:  # an illegal change on the partner's side is not mirrored
        log.warning(
            "partner %s: Task/%s change not mirrored: %s", client.base_url, task["id"], exc.message
        )
        return 0
