"""Messages to people: e-mail through SMTP and a messaging provider's webhook. Pure outbound I/O;
nothing of the gateway is imported here (the policy of what to send, when and to whom lives in
``fhir_gateway.contacts``).

    send_email(SmtpConfig(host=…, port=587, sender=…), Email(to=…, subject=…, text=…))
    post_message(url, body, headers={…}, timeout=10)
"""

from __future__ import annotations

from ._errors import MessageError, MessageRefused, MessageUnavailable
from ._smtp import Email, SmtpConfig, build_email, send_email
from ._webhook import WebhookAnswer, post_message

__all__ = [
    "Email",
    "MessageError",
    "MessageRefused",
    "MessageUnavailable",
    "SmtpConfig",
    "WebhookAnswer",
    "build_email",
    "post_message",
    "send_email",
]
