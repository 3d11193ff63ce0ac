"""Inbound HL7 senders tied to registered hospital clients.

A hospital client may be registered with the senders it speaks for (``clients add --sender
APP|FACILITY``). The intake can then (a) take them into its allow-list, (b) refuse a message
posted by a hospital client for a sender that is not its own and (c) apply a message replayed
or recovered without its poster with the rights of the client registered for its sender.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from fhir_gateway.context import Caller
from fhir_gateway.security._clients import list_clients
from fhir_gateway.security._roles import MessageSender

__all__ = ["registered_senders", "sender_permitted", "message_caller", "sending"]


def registered_senders(session: Session) -> dict[str, str]:
    """Sender key (``APP|FACILITY`` or ``FACILITY``) → the Organization of its hospital client."""
    out: dict[str, str] = {}
    for client in list_clients(session):
        if client.role == "hospital" and client.active:
            for sender in client.senders:
                out[sender] = client.organization or client.client_id
    return out


def sender_permitted(session: Session, caller: Caller, application: str, facility: str) -> bool:
    """May this caller submit messages of this sender? Non-hospital internal callers may."""
    if caller.role != "hospital":
        return caller.role in ("system", "admin")
    from fhir_gateway.security._clients import get_client

    client = get_client(session, caller.client_id)
    if client is None:
        return False
    return f"{application}|{facility}" in client.senders or facility in client.senders


def message_caller(session: Session, sender: str | None) -> Caller | None:
    """The rights of the hospital client registered for ``sender`` (``APP|FACILITY``, a FHIR
    endpoint), or None when no active client is."""
    if not sender:
        return None
    facility = sender.rpartition("|")[2]
    for client in list_clients(session):
        if (
            client.role == "hospital"
            and client.active
            and (sender in client.senders or facility in client.senders)
        ):
            return MessageSender(
                client.client_id,
                client.role,
                client.organization,
                frozenset(client.scopes),
                sender=sender,
            )
    return None


def sending(caller: Caller, sender: str | None) -> Caller:
    """``caller`` applying a message of ``sender``: its own rights, plus what that sender's earlier
    messages wrote. The gateway itself (authentication off) stays as it is."""
    if caller.role == "system" or not sender:
        return caller
    return MessageSender(
        caller.client_id, caller.role, caller.organization, caller.scopes, caller.address, sender
    )
