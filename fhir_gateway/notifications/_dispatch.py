"""Matching at write time: every stored change is tested against the active Subscriptions, and each
match becomes an outbox row in the same transaction (the transactional outbox). Matching uses the
search index the store has just written, so criteria mean exactly what the same search means."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.careplans import StoredDataCache
from fhir_gateway.context import SYSTEM
from fhir_gateway.errors import GatewayError
from fhir_gateway.hooks import WriteEvent, settings_of
from fhir_gateway.notifications._numbering import defer
from fhir_gateway.notifications._payloads import Delivery, notification_bundle, rest_hook
from fhir_gateway.notifications._subscriptions import Spec, SubscriptionError, parse_subscription
from fhir_gateway.notifications._visibility import caller_from_json, disclosed, visible_copy
from fhir_gateway.store import outbox
from fhir_gateway.store.repository import StoredResource
from fhir_gateway.store.search import match_ids
from fhir_gateway.store.tables import resources

__all__ = ["active_specs", "matches", "on_write", "base_url"]

log = logging.getLogger("fhir_gateway.notifications")
FHIR_JSON = "application/fhir+json"


def base_url(session: Session) -> str:
    """The gateway's public base URL, from the settings of the app whose session this is."""
    return (settings_of(session).base_url or "").rstrip("/")


def active_specs(session: Session) -> list[Spec]:
    """The active Subscriptions whose end has not passed; parsed once per stored version of the
    Subscriptions (``careplans.StoredDataCache``: a Subscription write, here or in another
    process, reads them again)."""
    specs = _specs.get(session)
    if not any(spec.end for spec in specs):
        return list(specs)
    now = clock.to_instant(clock.now())
    return [spec for spec in specs if not (spec.end and spec.end < now)]


def _load_specs(session: Session) -> tuple[Spec, ...]:
    rows = session.execute(
        select(resources.c.content).where(
            resources.c.res_type == "Subscription", resources.c.deleted.is_(False)
        )
    ).scalars()
    specs = []
    for content in rows:
        doc = content if isinstance(content, dict) else orjson.loads(content)
        try:
            spec = parse_subscription(doc)
        except SubscriptionError:
            continue
        if spec.status == "active":
            specs.append(spec)
    return tuple(specs)


_specs = StoredDataCache(("Subscription",), _load_specs)


def matches(session: Session, spec: Spec, res_type: str, res_id: str) -> bool:
    try:
        return bool(
            match_ids(
                session, res_type, [*spec.all_params(), ("_id", res_id)], caller=SYSTEM, limit=1
            )
        )
    except GatewayError as exc:  # criteria that stopped making sense (a search parameter removed)
        log.warning("Subscription/%s: criteria not usable: %s", spec.id, exc.message)
        return False


def on_write(event: WriteEvent, stored: StoredResource | None) -> None:
    # Deletes notify nobody: the index of a deleted resource is gone, and no topic here expects them.
    if stored is None or stored.deleted or stored.res_type == "Subscription":
        return
    interaction = "create" if event.before is None else "update"
    for spec in active_specs(event.session):
        if spec.kind == "message" or spec.resource_type != stored.res_type:
            continue
        if spec.topic is not None and interaction not in spec.topic.interactions:
            continue
        if matches(event.session, spec, stored.res_type, stored.res_id):
            _enqueue(event.session, spec, stored, interaction)


def _enqueue(session: Session, spec: Spec, stored: StoredResource, interaction: str) -> None:
    viewer = caller_from_json(outbox.viewer_of(session, spec.id))
    resource = visible_copy(session, viewer, stored.content)
    if resource is None:
        return  # the subscriber may not see this resource: no notification about it either
    focus = f"{stored.relative}/_history/{stored.version_id}"
    disclosures = disclosed(session)

    def enqueue(session: Session, number: int) -> None:
        delivery = _delivery(spec, resource, interaction, number, base_url(session))
        outbox.enqueue(
            session,
            channel="rest-hook",
            method=delivery.method,
            url=delivery.url,
            body=delivery.body,
            content_type=delivery.content_type,
            headers=spec.headers,
            subscription=spec.id,
            event_number=number,
            focus=focus,
            disclosures=disclosures,
        )

    defer(session, spec.id, enqueue)  # numbered when the transaction commits (``_numbering``)


def _delivery(
    spec: Spec, resource: dict[str, Any], interaction: str, number: int, base: str
) -> Delivery:
    if spec.kind == "search":
        return rest_hook(spec, resource, orjson.dumps(resource))
    bundle = notification_bundle(
        spec,
        resource=resource,
        interaction=interaction,
        event_number=number,
        timestamp=clock.to_instant(clock.now()),
        base_url=base,
    )
    return Delivery("POST", spec.endpoint, orjson.dumps(bundle), FHIR_JSON)
