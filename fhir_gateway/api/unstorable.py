"""REST input that no store can hold: NUL. PostgreSQL text cannot store it and no FHIR string may
carry it, so a request with one in its path, query, form or JSON body is refused with 400 (an
OperationOutcome naming where) before it reaches a service. HL7 v2 bodies are not checked here:
the HL7 intake keeps such a message and cleans the mapped values itself (with an ACK warning)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Request

from fhir_gateway.errors import InvalidRequest

__all__ = [
    "refuse_nul_in_url",
    "refuse_nul_in_form",
    "refuse_nul_in_json",
    "refuse_nul_in_json_bytes",
]

NUL = "\x00"


async def refuse_nul_in_url(request: Request) -> None:
    """A dependency of every route: NUL in the path (an id) or in a query parameter."""
    if NUL in request.scope.get("path", ""):
        raise InvalidRequest("The request path holds a NUL character (%00)")
    for name, value in request.query_params.multi_items():
        if NUL in name or NUL in value:
            raise InvalidRequest(
                f"Query parameter {name.replace(NUL, '')!r} holds a NUL character (%00)"
            )


def refuse_nul_in_form(body: bytes) -> None:
    if b"%00" not in body and b"\x00" not in body:
        return
    for name, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True):
        if NUL in name or NUL in value:
            raise InvalidRequest(
                f"Form parameter {name.replace(NUL, '')!r} holds a NUL character (%00)"
            )


def refuse_nul_in_json(raw: bytes, value: Any) -> None:
    """NUL can only reach a parsed JSON value as the escape ``\\u0000``: walk it only then."""
    if b"\\u0000" not in raw:
        return
    path = _nul_path(value)
    if path is not None:
        raise InvalidRequest(
            f"The JSON body holds a NUL character (\\u0000) at {path or 'its root'}"
        )


def refuse_nul_in_json_bytes(raw: bytes) -> None:
    """For bodies a service parses itself: what is not JSON is left to it to refuse."""
    if b"\\u0000" not in raw:
        return
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return
    refuse_nul_in_json(raw, value)


def _nul_path(value: Any) -> str | None:
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return where
        elif isinstance(item, dict):
            for key, child in item.items():
                if NUL in key:
                    return where
                stack.append((f"{where}.{key}" if where else key, child))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", child) for i, child in enumerate(item))
    return None
