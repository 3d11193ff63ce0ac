"""Da Vinci Unsolicited Notifications (admit, discharge, transfer message Bundles). Pure.

note = read_notification(bundle)      # → event, idempotency key, transaction Bundle
response_message(note, "ok", timestamp=..., receiver_endpoint=...)
"""

from __future__ import annotations

from ._errors import InvalidNotification, NotificationError, UnsupportedNotification
from ._read import EVENT_SYSTEM, EVENTS, Notification, read_notification
from ._respond import response_message

__all__ = [
    "EVENTS",
    "EVENT_SYSTEM",
    "InvalidNotification",
    "Notification",
    "NotificationError",
    "UnsupportedNotification",
    "read_notification",
    "response_message",
]
