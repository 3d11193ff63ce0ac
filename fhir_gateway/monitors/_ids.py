"""Deterministic ids: one condition always names the same Flag or Communication, so a monitor run
twice, or two workers at once, meet the primary key instead of raising a second alert. Keyed with
the installation's secret, so that no client can derive them from ids it holds."""

from __future__ import annotations

import hashlib
import uuid

from fhir_gateway.store.keyed_ids import keyed_id

__all__ = ["monitor_id", "lock_key"]

_NAMESPACE = uuid.UUID("0b6f3c1e-2f4d-4e57-9d0a-8c1e5a7b9f21")


def monitor_id(*parts: str) -> str:
    """``monitor_id("overdue", "past-deadline", "Task/1", "flag")`` → a stable UUID."""
    return keyed_id(_NAMESPACE, "|".join(parts))


def lock_key(*parts: str) -> int:
    """A signed 64-bit key for ``pg_advisory_xact_lock``."""
    digest = hashlib.blake2b("|".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
