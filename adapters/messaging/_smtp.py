"""E-mail through a real SMTP client (the standard library's ``smtplib``), with a bound on every
wait: the connection, each command and the whole exchange share ``timeout``.

    config = SmtpConfig(host="mail.example.org", port=587, sender="care@example.org",
                        starttls=True, username="care", password="…")
    send_email(config, Email(to="ann@example.org", subject="…", text="…", language="hi"))

smtplib's errors become ``MessageError``s here, at the boundary: a 5xx reply (the mailbox does
not exist, the message is refused) is ``MessageRefused``; a 4xx reply, a dropped connection, a
timeout or an unreachable server is ``MessageUnavailable``.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import lru_cache

from ._errors import MessageError, MessageRefused, MessageUnavailable

__all__ = ["SmtpConfig", "Email", "send_email", "build_email"]


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    sender: str  # the From address
    starttls: bool = True  # upgrade the connection before sending (port 587)
    implicit_tls: bool = False  # implicit TLS from the first byte (port 465)
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0
    ssl_context: ssl.SSLContext | None = None  # None: the system's trusted CAs, host checked
    helo_name: str | None = None  # EHLO name; None: the From address's domain (no DNS look-up)


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    subject: str
    text: str
    language: str = "en"  # Content-Language, so a mail client renders and reads it right
    reference: str | None = None  # an id the receiver's replies may quote (X-Reference)


def build_email(config: SmtpConfig, email: Email) -> EmailMessage:
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=config.sender.rsplit("@", 1)[-1] or None)
    if email.reference:
        message["X-Reference"] = email.reference
    message.set_content(email.text)  # UTF-8, quoted-printable or base64 as the text needs
    message["Content-Language"] = email.language  # after set_content, which resets Content-*
    return message


@lru_cache(maxsize=1)
def _trusted() -> ssl.SSLContext:
    """The system's CAs, host names checked: built once (loading the CAs takes ~0.1 s)."""
    return ssl.create_default_context()


def _connect(config: SmtpConfig) -> smtplib.SMTP:
    # smtplib would otherwise ask the resolver for this host's FQDN on every connection
    helo = config.helo_name or config.sender.rsplit("@", 1)[-1] or "localhost"
    if config.implicit_tls:
        context = config.ssl_context or _trusted()
        return smtplib.SMTP_SSL(
            config.host, config.port, helo, timeout=config.timeout, context=context
        )
    client = smtplib.SMTP(config.host, config.port, helo, timeout=config.timeout)
    if config.starttls:
        client.starttls(context=config.ssl_context or _trusted())
    return client


def send_email(config: SmtpConfig, email: Email) -> None:
    """Deliver one message to the server; returns once it has accepted it for delivery."""
    message = build_email(config, email)
    try:
        with _connect(config) as client:
            if config.username:
                client.login(config.username, config.password or "")
            refused = client.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise _error_for(min(codes) if codes else 550, "recipient refused") from exc
    except smtplib.SMTPResponseException as exc:  # sender/data refused, auth, 4xx greetings
        raise _error_for(exc.smtp_code, _text(exc.smtp_error)) from exc
    except (smtplib.SMTPException, OSError) as exc:  # disconnected, timeout, refused connection
        raise MessageUnavailable(
            f"SMTP {config.host}:{config.port}: {exc.__class__.__name__}"
        ) from exc
    if refused:
        raise MessageRefused("recipient refused", code=550)


# The server wants authentication or TLS it did not get (530 also "STARTTLS first", 534, 535
# credentials wrong, 538): the gateway's settings are to fix, not the message, so it is retried.
_FIXABLE = frozenset({530, 534, 535, 538})


def _error_for(code: int, what: str) -> MessageError:
    if 500 <= code < 600 and code not in _FIXABLE:
        return MessageRefused(f"SMTP {code}: {what}", code=code)
    return MessageUnavailable(f"SMTP {code}: {what}", code=code)


def _text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text[:200]
