"""Inbound HL7 senders tied to registered hospital clients.

A hospital client may be registered with the senders it speaks for (``clients add --sender
APP|FACILITY``). The intake can then (a) take them into its allow-list and (b) refuse a message
posted by a hospital client for a sender that is not its own.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from fhir_gateway.context import Caller
from fhir_gateway.security._clients import list_clients

__all__ = ["registered_senders", "sender_permitted"]


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
