"""What is sent (pure): a classic rest-hook request, a Backport IG notification Bundle, a Da Vinci
Unsolicited Notification message Bundle."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fhir_gateway import privacy
from fhir_gateway.notifications._subscriptions import Spec

__all__ = [
    "Delivery",
    "rest_hook",
    "notification_bundle",
    "davinci_message",
    "DAVINCI_EVENTS",
    "EVENT_SYSTEM",
]

FHIR_JSON = "application/fhir+json"
_BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
EVENT_SYSTEM = "http://hl7.org/fhir/us/davinci-alerts/CodeSystem/notification-event"
DAVINCI_EVENTS = {
    "notification-admit": "Admit Notification",
    "notification-discharge": "Discharge Notification",
}
_DAVINCI = "http://hl7.org/fhir/us/davinci-alerts/StructureDefinition"


@dataclass(frozen=True, slots=True)
class Delivery:
    method: str
    url: str
    body: bytes
    content_type: str | None


def rest_hook(spec: Spec, resource: dict[str, Any], body: bytes) -> Delivery:
    """R4 rest-hook: no payload → an empty POST to the endpoint; a payload → PUT endpoint/Type/id."""
    if spec.content == "empty":
        return Delivery("POST", spec.endpoint, b"", None)
    url = f"{spec.endpoint.rstrip('/')}/{resource['resourceType']}/{resource['id']}"
    return Delivery("PUT", url, body, FHIR_JSON)


def _absolute(base_url: str, relative: str) -> str:
    return f"{base_url}/{relative}" if base_url else relative


def notification_bundle(
    spec: Spec,
    *,
    resource: dict[str, Any],
    interaction: str,
    event_number: int,
    timestamp: str,
    base_url: str,
) -> dict[str, Any]:
    """A Backport IG event notification: a history Bundle whose first entry is the subscription
    status (a Parameters resource in R4), then the focus (id-only: no resource; full-resource)."""
    assert spec.topic is not None
    focus = f"{resource['resourceType']}/{resource['id']}"
    subscription = _absolute(base_url, f"Subscription/{spec.id}")
    event: list[dict[str, Any]] = [
        {"name": "event-number", "valueString": str(event_number)},
        {"name": "timestamp", "valueInstant": timestamp},
    ]
    if spec.content != "empty":
        event.append({"name": "focus", "valueReference": {"reference": _absolute(base_url, focus)}})
    status_id = str(uuid.uuid4())
    status = {
        "resourceType": "Parameters",
        "id": status_id,
        "meta": {"profile": [f"{_BACKPORT}/backport-subscription-status-r4"]},
        "parameter": [
            {"name": "subscription", "valueReference": {"reference": subscription}},
            {"name": "topic", "valueCanonical": spec.topic.url},
            {"name": "status", "valueCode": "active"},
            {"name": "type", "valueCode": "event-notification"},
            {"name": "events-since-subscription-start", "valueString": str(event_number)},
            {"name": "notification-event", "part": event},
        ],
    }
    entries = [
        {
            "fullUrl": f"urn:uuid:{status_id}",
            "resource": status,
            "request": {"method": "GET", "url": f"{subscription}/$status"},
            "response": {"status": "200"},
        }
    ]
    if spec.content != "empty":
        entry: dict[str, Any] = {
            "fullUrl": _absolute(base_url, focus),
            "request": {
                "method": "POST" if interaction == "create" else "PUT",
                "url": resource["resourceType"] if interaction == "create" else focus,
            },
            "response": {"status": "201" if interaction == "create" else "200"},
        }
        if spec.content == "full-resource":
            entry["resource"] = resource
        entries.append(entry)
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [f"{_BACKPORT}/backport-subscription-notification-r4"]},
        "type": "history",
        "timestamp": timestamp,
        "entry": entries,
    }


def davinci_message(
    event: str,
    *,
    encounter: dict[str, Any],
    others: list[dict[str, Any]],
    source_endpoint: str,
    destination: str,
    timestamp: str,
) -> dict[str, Any]:
    """A Da Vinci Unsolicited Notification: MessageHeader (event, focus = the Encounter) first, then
    the Encounter and the resources it needs (Patient, Conditions, Organization, …)."""
    header_id = str(uuid.uuid4())
    resources = [encounter, *others]
    full_urls = {
        f"{r['resourceType']}/{r['id']}": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, source_endpoint + '/' + r['resourceType'] + '/' + r['id'])}"
        for r in resources
    }
    header = {
        "resourceType": "MessageHeader",
        "id": header_id,
        "meta": {
            "profile": [
                f"{_DAVINCI}/{event.removeprefix('notification-')}-notification-messageheader"
            ]
        },
        "eventCoding": {"system": EVENT_SYSTEM, "code": event, "display": DAVINCI_EVENTS[event]},
        "destination": [{"endpoint": destination}],
        "source": {"name": "fhir-gateway", "endpoint": source_endpoint},
        "focus": [{"reference": full_urls[f"Encounter/{encounter['id']}"]}],
    }
    provider = (encounter.get("serviceProvider") or {}).get("reference")
    if provider in full_urls:
        header["sender"] = header["responsible"] = {"reference": full_urls[provider]}
    entries = [{"fullUrl": f"urn:uuid:{header_id}", "resource": header}]
    entries += [
        {
            "fullUrl": full_urls[f"{r['resourceType']}/{r['id']}"],
            "resource": _relinked(r, full_urls),
        }
        for r in resources
    ]
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [f"{_DAVINCI}/notifications-bundle"]},
        "type": "message",
        "timestamp": timestamp,
        "entry": entries,
    }


def _relinked(resource: dict[str, Any], full_urls: dict[str, str]) -> dict[str, Any]:
    """References between the message's resources point at their fullUrls; of ``meta`` only the
    security labels and the disclosure notice travel (the receiver must know what it may do with
    the copy)."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: (full_urls.get(v, v) if k == "reference" and isinstance(v, str) else walk(v))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    doc = walk(resource)
    doc.pop("meta", None)
    meta = privacy.travelling_meta(resource)
    if meta:
        doc["meta"] = meta
    return doc
