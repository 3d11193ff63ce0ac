"""Security: SMART backend-services authentication, roles and scopes, the row policy (who sees
which resources, and which copy), the write hooks that apply the privacy module's labels and keep
its consent grants, the audit trail, rate limits. The privacy rules themselves are
``fhir_gateway.privacy``'s.

For other modules:

* ``visible_to(session, caller, res_type, res_id)`` / ``redact_for(session, caller, resource)``:
  whether a caller may receive a resource, and the copy it may receive (notifications: call
  ``redact_for`` on every payload resource, with ``partner_caller(org)`` for a partner).
* ``take_disclosures(session)``: the Part 2 copies ``redact_for`` served under a consent since,
  to pass with the outbox row that carries them (``outbox.enqueue(…, disclosures=…)``): the
  worker withdraws the row when no consent permits them any more (``disclosure_withdrawn_because``)
  and accounts for them once delivered (``account_delivered``); ``accounting(_bundle)``: a
  patient's accounting of Part 2 disclosures (42 CFR 2.24, 2.25).
* ``search_audit_events`` / ``read_audit_event``: the audit trail's rows as FHIR AuditEvents;
  ``AUDIT_SEARCH_PARAMS``: the parameters that search answers to (name → type).
* ``for_sender(session, sender)``: name the sender of what a session writes, so that its
  substance-use diagnoses are labelled Part 2 or not (``privacy.is_part2_sender``).
* ``staged_sources(session)``: a transaction's checked writes not yet stored, which what it
  checks next inherits labels from as if they were stored.
* ``registered_senders(session)``: the HL7 senders registered hospital clients speak for;
  ``message_caller(session, sender)``: the rights of the client registered for a sender;
  ``sending(caller, sender)``: a caller's rights while a message of that sender is applied.
"""

from __future__ import annotations

from fhir_gateway.security._audit import request_event, token_event
from fhir_gateway.security._audit_search import SEARCH_PARAMS as AUDIT_SEARCH_PARAMS
from fhir_gateway.security._audit_search import read_event as read_audit_event
from fhir_gateway.security._audit_search import search_events as search_audit_events
from fhir_gateway.security._clients import (
    Client,
    add_client,
    get_client,
    list_clients,
    remove_client,
)
from fhir_gateway.security._disclosures import (
    account_delivered,
    accounting,
    accounting_bundle,
)
from fhir_gateway.security._disclosures import take as take_disclosures
from fhir_gateway.security._disclosures import withdrawn_because as disclosure_withdrawn_because
from fhir_gateway.security._install import install_policy, install_row_policy
from fhir_gateway.security._labels import for_sender, staged_sources
from fhir_gateway.security._policy import SUBSETTED, partner_caller, redact_for, visible_to
from fhir_gateway.security._roles import ROLES, ROUTE_ROLES, TokenCaller
from fhir_gateway.security._senders import (
    message_caller,
    registered_senders,
    sender_permitted,
    sending,
)
from fhir_gateway.security._service import SecurityService
from fhir_gateway.security._tokens import CLIENT_ALGS, peek

__all__ = [
    "account_delivered",
    "accounting",
    "accounting_bundle",
    "disclosure_withdrawn_because",
    "take_disclosures",
    "Client",
    "add_client",
    "get_client",
    "list_clients",
    "remove_client",
    "install_policy",
    "install_row_policy",
    "SUBSETTED",
    "for_sender",
    "staged_sources",
    "SecurityService",
    "partner_caller",
    "redact_for",
    "visible_to",
    "ROLES",
    "ROUTE_ROLES",
    "TokenCaller",
    "message_caller",
    "registered_senders",
    "sender_permitted",
    "sending",
    "request_event",
    "token_event",
    "read_audit_event",
    "search_audit_events",
    "AUDIT_SEARCH_PARAMS",
    "CLIENT_ALGS",
    "peek",
]
