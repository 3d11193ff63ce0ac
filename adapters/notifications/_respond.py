"""The answer to a message (FHIR messaging: a response message whose MessageHeader.response
names the request's MessageHeader.id with ok / transient-error / fatal-error)."""

from __future__ import annotations

import uuid
from typing import Any

from ._read import Notification

__all__ = ["response_message"]

_CODES = ("ok", "transient-error", "fatal-error")


def response_message(
    request: Notification,
    code: str,
    *,
    timestamp: str,
    receiver_endpoint: str,
    outcome: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if code not in _CODES:
        raise ValueError(f"response code {code!r} is not one of {_CODES}")
    header_id = str(uuid.uuid4())
    header: dict[str, Any] = {
        "resourceType": "MessageHeader",
        "id": header_id,
        "eventCoding": request.header.get("eventCoding"),
        "destination": [{"endpoint": request.source_endpoint}],
        "source": {"endpoint": receiver_endpoint, "name": "fhir-gateway"},
        "response": {
            "identifier": request.message_id or request.bundle_identifier or "",
            "code": code,
        },
    }
    entries: list[dict[str, Any]] = [{"fullUrl": f"urn:uuid:{header_id}", "resource": header}]
    if outcome is not None:
        outcome_id = str(uuid.uuid4())
        header["response"]["details"] = {"reference": f"urn:uuid:{outcome_id}"}
        entries.append(
            {"fullUrl": f"urn:uuid:{outcome_id}", "resource": {**outcome, "id": outcome_id}}
        )
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "message",
        "timestamp": timestamp,
        "entry": entries,
    }
