"""Every table of the gateway on one MetaData: import this (not a single table module) wherever the
whole schema is needed (Alembic, tests). A new concern's tables live in their own module, on
``tables.metadata``, and are imported here."""

from __future__ import annotations

from fhir_gateway.store import (
    inbox_tables,
    monitor_tables,
    outbox_tables,
    security_tables,
    tables,
    web_tables,
)
from fhir_gateway.store.tables import metadata

__all__ = [
    "metadata",
    "tables",
    "inbox_tables",
    "monitor_tables",
    "outbox_tables",
    "security_tables",
    "web_tables",
]
