"""Subscription resources as typed specifications (pure). Three kinds:

- ``search``: a classic R4 rest-hook; ``criteria`` is a search (``Task?owner=Organization/1``);
  an empty payload POSTs nothing to the endpoint, ``channel.payload`` PUTs the full resource to
  ``endpoint/Type/id`` (R4 subscription.html).
- ``topic``: the R4 Subscriptions Backport IG; ``criteria`` names a topic (the SDOH Clinical Care
  Task or ServiceRequest topic), the ``backport-filter-criteria`` extension narrows it, and the
  ``backport-payload-content`` extension chooses empty, id-only or full-resource.
- ``message``: ``channel.type = message`` with Encounter criteria: an EHR that receives Da Vinci
  Unsolicited Notifications (``notification-admit``/``notification-discharge``) at its
  ``$process-message`` endpoint.

``channel.header`` entries (``Name: value``) are sent with every delivery. The signing secret may be
given once in the ``subscription-secret`` extension on ``channel``; it is taken out of the stored
resource (see ``_rules``) and otherwise generated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fhir_gateway.notifications._topics import TOPICS, Topic

__all__ = [
    "Spec",
    "SubscriptionError",
    "parse_subscription",
    "SECRET_EXT",
    "FILTER_EXT",
    "CONTENT_EXT",
    "BACKPORT_PROFILE",
]

_BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
FILTER_EXT = f"{_BACKPORT}/backport-filter-criteria"
CONTENT_EXT = f"{_BACKPORT}/backport-payload-content"
BACKPORT_PROFILE = f"{_BACKPORT}/backport-subscription"
SECRET_EXT = "http://fhir-gateway.org/fhir/StructureDefinition/subscription-secret"
_CONTENTS = ("empty", "id-only", "full-resource")
_PAYLOADS = ("application/fhir+json", "application/json", "application/fhir+json; fhirVersion=4.0")


class SubscriptionError(ValueError):
    def __init__(self, message: str, expression: str) -> None:
        super().__init__(message)
        self.expression = expression


@dataclass(frozen=True, slots=True)
class Spec:
    id: str
    kind: str  # search | topic | message
    resource_type: str
    params: tuple[tuple[str, str], ...]
    endpoint: str
    status: str = "active"
    headers: dict[str, str] = field(default_factory=dict)
    content: str = "empty"
    topic: Topic | None = None
    end: str | None = None

    def all_params(self) -> list[tuple[str, str]]:
        return [*(self.topic.current if self.topic else ()), *self.params]


def _extension(node: dict[str, Any] | None, url: str) -> list[Any]:
    return [
        next((v for k, v in e.items() if k.startswith("value")), None)
        for e in (node or {}).get("extension", [])
        if e.get("url") == url
    ]


def _headers(channel: dict[str, Any]) -> dict[str, str]:
    out = {}
    for line in channel.get("header", []):
        name, sep, value = str(line).partition(":")
        if (
            not sep
            or not name.strip()
            or any(c in name for c in " \t\r\n")
            or "\n" in value
            or "\r" in value
        ):
            raise SubscriptionError(
                f"channel.header {line!r} is not 'Name: value'", "Subscription.channel.header"
            )
        out[name.strip()] = value.strip()
    return out


def _query(text: str, where: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    res_type, _, query = text.partition("?")
    if not res_type or "/" in res_type or not res_type[0].isupper():
        raise SubscriptionError(f"{text!r} is not a search like Type?param=value", where)
    return res_type, tuple(parse_qsl(query, keep_blank_values=True))


def _endpoint(channel: dict[str, Any]) -> str:
    endpoint = str(channel.get("endpoint") or "")
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SubscriptionError(
            "channel.endpoint must be an http(s) URL", "Subscription.channel.endpoint"
        )
    return endpoint


def _topic_spec(sub: dict[str, Any], channel: dict[str, Any], common: dict[str, Any]) -> Spec:
    topic = TOPICS.get(sub["criteria"].split("|", 1)[0])
    if topic is None:
        raise SubscriptionError(
            f"Unknown subscription topic {sub['criteria']}; known: {', '.join(TOPICS)}",
            "Subscription.criteria",
        )
    params: list[tuple[str, str]] = []
    for text in _extension(sub.get("_criteria"), FILTER_EXT):
        res_type, found = _query(str(text), "Subscription.criteria.extension")
        if res_type != topic.resource_type:
            raise SubscriptionError(
                f"The filter {text!r} is not on {topic.resource_type}",
                "Subscription.criteria.extension",
            )
        unknown = sorted({n.split(":")[0] for n, _ in found} - topic.filters)
        if unknown:
            raise SubscriptionError(
                f"The topic cannot filter by {', '.join(unknown)}",
                "Subscription.criteria.extension",
            )
        params += found
    contents = _extension(channel.get("_payload"), CONTENT_EXT)
    content = str(contents[0]) if contents else ("id-only" if channel.get("payload") else "empty")
    if content not in _CONTENTS:
        raise SubscriptionError(
            f"Payload content {content!r} is not one of {', '.join(_CONTENTS)}",
            "Subscription.channel.payload",
        )
    return Spec(
        kind="topic",
        resource_type=topic.resource_type,
        params=tuple(params),
        topic=topic,
        content=content,
        **common,
    )


def parse_subscription(sub: dict[str, Any]) -> Spec:
    """The Subscription as a Spec; SubscriptionError says what is wrong with it."""
    channel = sub.get("channel") or {}
    kind = channel.get("type")
    if kind not in ("rest-hook", "message"):
        raise SubscriptionError(
            f"channel.type {kind!r} is not supported; use rest-hook or message",
            "Subscription.channel.type",
        )
    payload = channel.get("payload")
    if payload and str(payload).split(";")[0].strip() not in (p.split(";")[0] for p in _PAYLOADS):
        raise SubscriptionError(
            f"channel.payload {payload!r} is not supported; use application/fhir+json",
            "Subscription.channel.payload",
        )
    common: dict[str, Any] = {
        "id": str(sub.get("id") or ""),
        "endpoint": _endpoint(channel),
        "headers": _headers(channel),
        "status": str(sub.get("status") or "requested"),
        "end": sub.get("end"),
    }
    criteria = str(sub.get("criteria") or "")
    if criteria.startswith(("http://", "https://")):
        if kind != "rest-hook":
            raise SubscriptionError(
                "Topic subscriptions use channel.type rest-hook", "Subscription.channel.type"
            )
        return _topic_spec(sub, channel, common)
    res_type, params = _query(criteria, "Subscription.criteria")
    if kind == "message":
        if res_type != "Encounter":
            raise SubscriptionError(
                "A message subscription (Da Vinci notifications) has Encounter criteria",
                "Subscription.criteria",
            )
        return Spec(
            kind="message", resource_type=res_type, params=params, content="full-resource", **common
        )
    return Spec(
        kind="search",
        resource_type=res_type,
        params=params,
        content="full-resource" if payload else "empty",
        **common,
    )
