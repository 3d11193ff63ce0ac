"""Tables of the security concern (fhir_gateway.security).

auth_clients     registered SMART backend-service clients: role, organization, scopes, JWKS
auth_jti         every client-assertion ``jti`` accepted, unique per client: a replay fails on
                 the key, also when several gateway processes see it at once
gateway_keys     the gateway's own token-signing key (unless a key file is configured), shared
                 by every process so tokens survive restarts
consent_grants   who may receive a patient's 42 CFR Part 2 data: one row per (Consent,
                 organisation or class), derived from active Consents at write time; ``notes``
                 rows are for SUD counselling notes only, the others for all but them
audit_log        the audit trail: one compact row per event (``security._audit_rows``)
audit_log_terms  what a stored AuditEvent (kind ``stored``) is searched by beyond its row's
                 columns: every agent, entity and patient it names, its tags, labels, profiles
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Index, String, Table, Text

from fhir_gateway.store.tables import JsonDoc, UtcTime, metadata

__all__ = [
    "auth_clients",
    "auth_jti",
    "gateway_keys",
    "consent_grants",
    "audit_log",
    "audit_log_terms",
]

auth_clients = Table(
    "auth_clients",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("role", String(32), nullable=False),
    Column("organization", String(128), nullable=True),  # Organization/ID
    Column("scopes", Text, nullable=False),  # space-separated SMART scopes
    Column("jwks", JSON, nullable=True),
    Column("jwks_url", String(1024), nullable=True),
    Column("senders", JSON, nullable=True),  # HL7 senders ('APP|FACILITY') a hospital speaks for
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UtcTime, nullable=False),
)

auth_jti = Table(
    "auth_jti",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("jti", String(256), primary_key=True),
    Column("expires_at", UtcTime, nullable=False),
    Index("ix_auth_jti_expires_at", "expires_at"),
)

gateway_keys = Table(
    "gateway_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("private_jwk", Text, nullable=False),
    Column("created_at", UtcTime, nullable=False),
)

consent_grants = Table(
    "consent_grants",
    metadata,
    Column("consent_id", String(64), primary_key=True),
    Column("organization", String(128), primary_key=True),  # Organization/ID, or a class
    Column("patient_id", String(64), nullable=False),
    Column("starts", UtcTime, nullable=True),
    Column("ends", UtcTime, nullable=True),  # exclusive
    Column("notes", Boolean, nullable=False, default=False),
    Index("ix_consent_grants_patient_org", "patient_id", "organization"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", String(64), primary_key=True),  # UUIDv7: in the order the events happened
    Column("recorded", UtcTime, nullable=False),
    Column("kind", String(16), nullable=False),  # request | token | disclosure | stored
    Column("subtype", String(64), nullable=False),  # read, search-type, token-issued, …
    Column("action", String(1), nullable=False),  # C R U D E
    Column("outcome", String(1), nullable=False),  # 0 4 8
    Column("client_id", String(128), nullable=True),  # the agent's altId
    Column("agent", String(128), nullable=True),  # Organization/ID: the caller's or recipient
    Column("patient", String(128), nullable=True),  # Patient/ID
    Column("entity", String(256), nullable=True),  # Type/ID the request named
    Column("detail", JsonDoc, nullable=False),
    Column("updated", UtcTime, nullable=True),  # a stored AuditEvent's lastUpdated (else recorded)
    Index("ix_audit_log_recorded", "recorded"),
    Index("ix_audit_log_patient_recorded", "patient", "recorded"),
    Index("ix_audit_log_client_recorded", "client_id", "recorded"),
)

audit_log_terms = Table(
    "audit_log_terms",
    metadata,
    Column("id", String(64), nullable=False),  # the audit_log row's
    Column("name", String(16), nullable=False),  # agent entity patient _tag _security _profile
    Column("system", String(256), nullable=False),  # a token's system; '' otherwise
    Column("value", String(256), nullable=False),  # a token's code, a reference, a profile URL
    Index("ix_audit_log_terms_name_value", "name", "value"),
    Index("ix_audit_log_terms_id", "id"),
)
