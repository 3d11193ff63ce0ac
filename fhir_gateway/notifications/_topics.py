"""The subscription topics the gateway serves through the R4 Subscriptions Backport IG: the SDOH
Clinical Care IG's Task and ServiceRequest topics (checking_task_status.html)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Topic", "TOPICS", "TASK_TOPIC", "SERVICE_REQUEST_TOPIC"]

TASK_TOPIC = "http://hl7.org/fhir/us/sdoh-clinicalcare/SubscriptionTopic/Task"
SERVICE_REQUEST_TOPIC = "http://hl7.org/fhir/us/sdoh-clinicalcare/SubscriptionTopic/Servicerequest"


@dataclass(frozen=True, slots=True)
class Topic:
    url: str
    resource_type: str
    interactions: frozenset[str]  # create | update | delete
    current: tuple[tuple[str, str], ...]  # queryCriteria.current, as search parameters
    filters: frozenset[str]  # canFilterBy


TOPICS = {
    TASK_TOPIC: Topic(
        TASK_TOPIC,
        "Task",
        frozenset({"create", "update", "delete"}),
        (("status:not", "draft"), ("intent", "order")),
        frozenset({"_lastUpdated", "code", "owner", "requester", "status", "_id"}),
    ),
    SERVICE_REQUEST_TOPIC: Topic(
        SERVICE_REQUEST_TOPIC,
        "ServiceRequest",
        frozenset({"update", "delete"}),
        (),
        frozenset({"_lastUpdated", "_id"}),
    ),
}
