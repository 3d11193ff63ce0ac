"""Errors of sending one message to a person (e-mail, a messaging provider's webhook).

MessageError             anything that went wrong
├── MessageUnavailable   no answer, a timeout, a temporary refusal (SMTP 4xx): worth retrying
└── MessageRefused       a permanent refusal (SMTP 5xx: unknown mailbox, policy): retrying is useless
"""

from __future__ import annotations

__all__ = ["MessageError", "MessageUnavailable", "MessageRefused"]


class MessageError(Exception):
    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code  # the SMTP reply code or HTTP status, when there was one


class MessageUnavailable(MessageError):
    pass


class MessageRefused(MessageError):
    pass
