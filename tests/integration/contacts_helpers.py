"""A local SMTP server (aiosmtpd) that keeps what it receives and can be told to refuse: the
caring-contact tests deliver real e-mail to it over loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller


@dataclass
class Mailbox:
    """What the server accepted, and the answers to give to the next DATA commands."""

    received: list[EmailMessage] = field(default_factory=list)
    refuse_next: list[str] = field(default_factory=list)  # e.g. "451 4.3.0 try again later"
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]  # noqa: N802
        with self.lock:
            if self.refuse_next:
                return self.refuse_next.pop(0)
            parsed = message_from_bytes(envelope.original_content, policy=policy.default)
            self.received.append(parsed)  # type: ignore[arg-type]
        return "250 2.0.0 Message accepted for delivery"

    def clear(self) -> None:
        with self.lock:
            self.received.clear()
            self.refuse_next.clear()


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    mailbox: Mailbox


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[SmtpServer]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", controller.port, mailbox)
    finally:
        controller.stop()


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")  # SMTP sends CRLF lines
