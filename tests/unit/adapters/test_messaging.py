"""The SMTP client against a real local SMTP server (aiosmtpd over loopback): a UTF-8 message
in the patient's language arrives whole; a temporary refusal, a permanent one and an absent
server each become the error the outbox's retry policy needs."""

from __future__ import annotations

import pytest
from contacts_helpers import body_of

from adapters.messaging import Email, MessageRefused, MessageUnavailable, SmtpConfig, send_email


def _config(server, **extra) -> SmtpConfig:  # type: ignore[no-untyped-def]
    return SmtpConfig(
        host=server.host,
        port=server.port,
        sender="care@example.org",
        starttls=False,
        timeout=5,
        **extra,
    )


HINDI = Email(
    to="asha@example.org",
    subject="आपके बारे में सोच रहे हैं",
    text="प्रिय आशा,\n\nटेली-मानस 14416",
    language="hi",
    reference="CommunicationRequest/1",
)


def test_a_message_in_hindi_arrives_whole_with_its_language(smtp_server) -> None:
    smtp_server.mailbox.clear()
    send_email(_config(smtp_server), HINDI)
    [message] = smtp_server.mailbox.received
    assert message["Subject"] == HINDI.subject
    assert message["To"] == "asha@example.org" and message["From"] == "care@example.org"
    assert (
        message["Content-Language"] == "hi" and message["X-Reference"] == "CommunicationRequest/1"
    )
    assert body_of(message).strip() == HINDI.text


def test_refusals_are_told_apart_temporary_from_permanent(smtp_server) -> None:
    smtp_server.mailbox.clear()
    smtp_server.mailbox.refuse_next[:] = ["451 4.3.0 Try again later", "550 5.1.1 No such mailbox"]
    with pytest.raises(MessageUnavailable, match="451") as temporary:
        send_email(_config(smtp_server), HINDI)
    assert temporary.value.code == 451
    with pytest.raises(MessageRefused, match="550"):
        send_email(_config(smtp_server), HINDI)
    assert smtp_server.mailbox.received == []


def test_no_server_listening_is_unavailable_not_a_crash() -> None:
    config = SmtpConfig(
        host="127.0.0.1", port=1, sender="care@example.org", starttls=False, timeout=2
    )
    with pytest.raises(MessageUnavailable, match="127.0.0.1:1"):
        send_email(config, HINDI)
