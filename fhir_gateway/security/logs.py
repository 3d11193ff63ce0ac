"""No secrets in logs: a filter on the root handlers that masks bearer tokens and JWTs.

The gateway never logs a token or an assertion on purpose (tests hold that); this is the second
line, for what a library or a traceback might print.
"""

from __future__ import annotations

import logging
import re

__all__ = ["SecretFilter", "redact_secrets_in_logs", "redact"]

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_ASSERTION = re.compile(r"(client_assertion=)[^&\s]+")


def redact(text: str) -> str:
    text = _JWT.sub("[token]", text)
    text = _BEARER.sub(r"\1[token]", text)
    return _ASSERTION.sub(r"\1[token]", text)


class SecretFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def redact_secrets_in_logs() -> None:
    """Add the filter to every handler of the root logger (idempotent)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(SecretFilter())
