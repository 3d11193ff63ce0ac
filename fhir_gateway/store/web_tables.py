"""Tables of the web pages for people (fhir_gateway.web).

web_users   people who sign in to the partner inbox or the case-manager dashboard: each mapped
            to a role and an Organization exactly as an API client is; argon2 password hash;
            consecutive failed sign-ins and the lock they cause (login throttling that holds
            across every gateway process)
web_keys    the secret that signs session cookies and CSRF tokens, shared by every process so
            that sessions survive restarts and any process can serve any page
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Integer, String, Table, Text

from fhir_gateway.store.tables import UtcTime, metadata

__all__ = ["web_users", "web_keys"]

web_users = Table(
    "web_users",
    metadata,
    Column("username", String(128), primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(32), nullable=False),
    Column("organization", String(128), nullable=True),  # Organization/ID
    Column("active", Boolean, nullable=False, default=True),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", UtcTime, nullable=True),
    Column("created_at", UtcTime, nullable=False),
)

web_keys = Table(
    "web_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("secret", Text, nullable=False),
    Column("created_at", UtcTime, nullable=False),
)
