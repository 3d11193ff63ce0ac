"""Notifications that leave the gateway, every one through the transactional outbox:

- FHIR R4 Subscriptions, ``rest-hook``: criteria as a search, an empty or full-resource payload,
  custom headers;
- the SDOH Clinical Care IG's Task and ServiceRequest topics through the R4 Subscriptions Backport
  IG (history Bundles whose first entry is the subscription status Parameters);
- Da Vinci Unsolicited Notifications (``notification-admit``/``notification-discharge``) to EHRs
  subscribed with ``channel.type = message``.

    install(settings)   # once, by the composition root: Subscription checks, write-time matching,
                        # and the discharge hook
    notify_encounter_event(session, "notification-admit", "Encounter/1")   # the intake, on an admit

Each delivery is signed (``SIGNATURE_HEADER``, HMAC-SHA256 with the subscription's secret; see
``verify``) and carries ``DELIVERY_HEADER`` (the same on every retry of one notification).
"""

from __future__ import annotations

from fhir_gateway import hooks
from fhir_gateway.notifications._encounters import (
    notify_encounter_event,
    on_discharge,
    on_encounter_stored,
    process_message_url,
)
from fhir_gateway.notifications._numbering import flush_notifications, forget_notifications
from fhir_gateway.notifications._payloads import davinci_message, notification_bundle
from fhir_gateway.notifications._rules import check_subscription, on_subscription
from fhir_gateway.notifications._signing import DELIVERY_HEADER, SIGNATURE_HEADER, sign, verify
from fhir_gateway.notifications._subscriptions import (
    BACKPORT_PROFILE,
    CONTENT_EXT,
    FILTER_EXT,
    SECRET_EXT,
    Spec,
    SubscriptionError,
    parse_subscription,
)
from fhir_gateway.notifications._topics import SERVICE_REQUEST_TOPIC, TASK_TOPIC, TOPICS
from fhir_gateway.settings import Settings

__all__ = [
    "install_numbering",
    "BACKPORT_PROFILE",
    "CONTENT_EXT",
    "DELIVERY_HEADER",
    "FILTER_EXT",
    "SECRET_EXT",
    "SERVICE_REQUEST_TOPIC",
    "SIGNATURE_HEADER",
    "Spec",
    "SubscriptionError",
    "TASK_TOPIC",
    "TOPICS",
    "davinci_message",
    "install",
    "notification_bundle",
    "notify_encounter_event",
    "parse_subscription",
    "process_message_url",
    "sign",
    "verify",
]


def install(rules: hooks.Rules, settings: Settings) -> None:
    """Register the notification hooks (the base URL is read from the app's settings)."""
    from fhir_gateway.notifications._dispatch import on_write

    del settings
    rules.before_write("Subscription", check_subscription)
    rules.after_write("Subscription", on_subscription)
    rules.after_write(None, on_write)
    rules.after_write("Encounter", on_encounter_stored)
    rules.on_discharge(on_discharge)


def install_numbering(rules: hooks.Rules) -> None:
    """Number and queue the transaction's notifications before it commits (``_numbering``):
    registered after every other rule, whose end-of-transaction writes may notify too."""
    rules.on_session("before_commit", flush_notifications)
    rules.on_session("after_soft_rollback", forget_notifications)
