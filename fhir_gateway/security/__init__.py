"""Security: SMART backend-services authentication, roles and scopes, the row policy (who sees
which resources, and which copy), 42 CFR Part 2 labels and consents, the audit trail, rate limits.

For other modules:

* ``visible_to(session, caller, res_type, res_id)`` / ``redact_for(session, caller, resource)``:
  whether a caller may receive a resource, and the copy it may receive (notifications: call
  ``redact_for`` on every payload resource, with ``partner_caller(org)`` for a partner).
* ``for_sender(session, sender)``: name the sender of what a session writes, so that its
  substance-use diagnoses are labelled Part 2 or not (``part2_senders``).
* ``condition_labels``, ``is_sensitive``, ``is_part2``, the label codings: for code that labels
  what it creates itself.
* ``registered_senders(session)``: the HL7 senders registered hospital clients speak for.
"""

from __future__ import annotations

from fhir_gateway.security._clients import (
    Client,
    add_client,
    get_client,
    list_clients,
    remove_client,
)
from fhir_gateway.security._install import install_policy
from fhir_gateway.security._labels import (
    ETH,
    NORDSCLCD,
    PART2,
    PSY,
    RESTRICTED,
    condition_labels,
    for_sender,
    is_part2,
    is_sensitive,
    is_substance_use,
)
from fhir_gateway.security._middleware import SecurityMiddleware
from fhir_gateway.security._policy import SUBSETTED, partner_caller, redact_for, visible_to
from fhir_gateway.security._roles import ROLES, TokenCaller
from fhir_gateway.security._senders import registered_senders, sender_permitted
from fhir_gateway.security._service import SecurityService

__all__ = [
    "Client",
    "add_client",
    "get_client",
    "list_clients",
    "remove_client",
    "install_policy",
    "ETH",
    "NORDSCLCD",
    "PART2",
    "PSY",
    "RESTRICTED",
    "SUBSETTED",
    "condition_labels",
    "for_sender",
    "is_part2",
    "is_sensitive",
    "is_substance_use",
    "SecurityMiddleware",
    "SecurityService",
    "partner_caller",
    "redact_for",
    "visible_to",
    "ROLES",
    "TokenCaller",
    "registered_senders",
    "sender_permitted",
]
