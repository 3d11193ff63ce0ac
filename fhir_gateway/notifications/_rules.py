"""Subscriptions as they are written: checked (channel, endpoint, criteria as a search the server
can run, headers, topic filters), activated (``requested`` → ``active``: the gateway accepts it at
once), their signing secret taken out of the stored resource and kept beside it, with the creator
(whose rights limit what the notifications show)."""

from __future__ import annotations

from typing import Any

from fhir_gateway.errors import InvalidRequest, InvalidSearch, Issue
from fhir_gateway.hooks import WriteEvent
from fhir_gateway.notifications._subscriptions import (
    SECRET_EXT,
    SubscriptionError,
    parse_subscription,
)
from fhir_gateway.notifications._visibility import caller_to_json
from fhir_gateway.search import plan as search_plan
from fhir_gateway.store import outbox
from fhir_gateway.store.repository import StoredResource

__all__ = ["check_subscription", "on_subscription"]

_SECRETS = "notifications.secrets"


def _take_secret(doc: dict[str, Any]) -> str | None:
    channel = doc.get("channel") or {}
    found = [e for e in channel.get("extension", []) if e.get("url") == SECRET_EXT]
    if not found:
        return None
    rest = [e for e in channel["extension"] if e.get("url") != SECRET_EXT]
    if rest:
        channel["extension"] = rest
    else:
        del channel["extension"]
    return str(found[0].get("valueString") or "") or None


def check_subscription(event: WriteEvent) -> list[Issue]:
    doc = event.after
    if doc is None:
        return []
    secret = _take_secret(doc)  # never stored in the resource, never served back
    try:
        spec = parse_subscription(doc)
        search_plan.parse(spec.resource_type, spec.all_params(), strict=True)
    except SubscriptionError as exc:
        raise InvalidRequest(
            f"The Subscription cannot be served: {exc}", expression=[exc.expression]
        ) from exc
    except InvalidSearch as exc:
        raise InvalidRequest(
            f"The Subscription criteria are not a search this server runs: {exc.message}",
            expression=["Subscription.criteria"],
        ) from exc
    if doc.get("status") == "requested":
        doc["status"] = "active"
    if secret:
        event.session.info.setdefault(_SECRETS, {})[id(doc)] = secret
    return []


def on_subscription(event: WriteEvent, stored: StoredResource | None) -> None:
    session = event.session
    if stored is None:
        return
    if stored.deleted:
        outbox.forget_subscription(session, stored.res_id)
        return
    outbox.ensure_subscription(session, stored.res_id)
    secret = session.info.get(_SECRETS, {}).pop(id(event.after), None)
    if secret:
        outbox.set_secret(session, stored.res_id, secret)
    if event.before is None:
        outbox.set_viewer(session, stored.res_id, caller_to_json(event.caller))
