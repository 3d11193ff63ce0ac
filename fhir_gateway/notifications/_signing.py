"""HMAC signatures of deliveries, so a receiver knows a notification came from this gateway and was
not altered or replayed: ``X-FHIR-Gateway-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`` over
``"<t>." + body`` with the subscription's secret. Pure; receivers may copy ``verify``."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SIGNATURE_HEADER", "DELIVERY_HEADER", "sign", "verify"]

SIGNATURE_HEADER = "X-FHIR-Gateway-Signature"
DELIVERY_HEADER = "X-FHIR-Gateway-Delivery"  # the outbox row id: the same on every retry


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify(
    secret: str,
    header: str | None,
    body: bytes,
    *,
    now: int | None = None,
    tolerance: int | None = 300,
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` (and, given ``now``, is recent enough)."""
    if not header:
        return False
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if not fields.get("t", "").isdigit() or "v1" not in fields:
        return False
    timestamp = int(fields["t"])
    if now is not None and tolerance is not None and abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(fields["v1"], _mac(secret, timestamp, body))
