"""The SMTP client against a real local SMTP server (aiosmtpd over loopback): a UTF-8 message
in the patient's language arrives whole; a temporary refusal, a permanent one and an absent
server each become the error the outbox's retry policy needs; STARTTLS and login work against a
server that requires both, and a certificate the client does not trust gets nothing sent."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from contacts_helpers import Mailbox, body_of
from tls_helpers import certificates

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


@dataclass
class _TlsServer:
    host: str
    port: int
    mailbox: Mailbox
    ca: Path
    logins: list[str]


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[_TlsServer]:
    """A server as providers run them: STARTTLS required, then AUTH (only over TLS)."""
    certs = certificates(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs["server.pem"], certs["server.key"])
    logins: list[str] = []

    def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        login, password = auth_data.login.decode(), auth_data.password.decode()
        if (login, password) == ("care-team", "s3cret"):
            logins.append(login)
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    mailbox = Mailbox()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield _TlsServer("127.0.0.1", port, mailbox, certs["ca.pem"], logins)
    finally:
        controller.stop()


def _tls_config(server: _TlsServer, **extra) -> SmtpConfig:  # type: ignore[no-untyped-def]
    settings = {
        "host": server.host,
        "port": server.port,
        "sender": "care@example.org",
        "starttls": True,
        "username": "care-team",
        "password": "s3cret",
        "ssl_context": ssl.create_default_context(cafile=str(server.ca)),
        "timeout": 5,
        **extra,
    }
    return SmtpConfig(**settings)


def test_starttls_then_login_delivers(tls_server: _TlsServer) -> None:
    send_email(_tls_config(tls_server), HINDI)
    [message] = tls_server.mailbox.received
    assert message["Subject"] == HINDI.subject
    assert tls_server.logins == ["care-team"]


def test_wrong_credentials_are_retried_not_dead_lettered(tls_server: _TlsServer) -> None:
    with pytest.raises(MessageUnavailable, match="535") as failed:
        send_email(_tls_config(tls_server, password="wrong"), HINDI)
    assert failed.value.code == 535
    assert tls_server.mailbox.received == []


def test_a_server_that_wants_starttls_first_is_a_setting_to_fix(tls_server: _TlsServer) -> None:
    """Without STARTTLS the server refuses (530): retried, as the message itself is fine."""
    with pytest.raises(MessageUnavailable) as failed:
        send_email(_tls_config(tls_server, starttls=False, username=None), HINDI)
    assert failed.value.code == 530
    assert tls_server.mailbox.received == []


def test_a_server_certificate_not_trusted_is_never_sent_to(tls_server: _TlsServer) -> None:
    """The system's CAs do not know the test CA: no login, no message over that connection."""
    with pytest.raises(MessageUnavailable, match="SSLCertVerificationError"):
        send_email(_tls_config(tls_server, ssl_context=None), HINDI)
    assert tls_server.logins == [] and tls_server.mailbox.received == []
