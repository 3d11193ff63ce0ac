"""Errors of a notification message Bundle that cannot be accepted."""

from __future__ import annotations

__all__ = ["NotificationError", "InvalidNotification", "UnsupportedNotification"]


class NotificationError(Exception):
    """The message cannot be accepted; ``code`` is an OperationOutcome issue type."""

    code = "invalid"

    def __init__(self, reason: str, *, expression: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expression = expression


class InvalidNotification(NotificationError):
    code = "invalid"


class UnsupportedNotification(NotificationError):
    code = "not-supported"
