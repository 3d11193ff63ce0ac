"""FHIR responses: stored bytes out as application/fhir+json, with ETag, Last-Modified, Location."""

from __future__ import annotations

import json
from collections.abc import Mapping
from email.utils import format_datetime
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from fhir_gateway.context import Caller
from fhir_gateway.errors import Issue
from fhir_gateway.services.resources import StoredResource, WriteResult, answer_for, restricted

__all__ = [
    "FHIR_JSON",
    "OUTCOME_HEADER",
    "fhir_json",
    "resource_response",
    "result_response",
    "outcome",
]

FHIR_JSON = "application/fhir+json"
# Warnings of a write answered with the resource (or nothing): the OperationOutcome, compact JSON.
# Prefer: return=OperationOutcome puts it in the body instead.
OUTCOME_HEADER = "X-FHIR-OperationOutcome"


def fhir_json(
    body: bytes | dict[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(content, status_code=status, media_type=FHIR_JSON, headers=headers)


def version_headers(stored: StoredResource) -> dict[str, str]:
    return {"ETag": stored.etag, "Last-Modified": format_datetime(stored.last_updated, usegmt=True)}


def resource_response(stored: StoredResource, status: int = 200) -> Response:
    return fhir_json(stored.content, status, version_headers(stored))


def outcome(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


def _compact(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=True, separators=(",", ":"))  # header values are ASCII


def _information(result: WriteResult) -> dict[str, Any]:
    issues = result.issues or [
        Issue(
            "Done"
            if result.stored is None
            else f"{result.stored.relative} version {result.stored.version_id}",
            code="informational",
            severity="information",
        )
    ]
    return outcome(issues)


def result_response(
    result: WriteResult, request: Request, base_url: str, caller: Caller | None = None
) -> Response:
    """Answer a write as ``Prefer: return=`` asks: representation (default), minimal, OperationOutcome."""
    from fhir_gateway.api.deps import prefer

    stored = result.stored
    if stored is not None and caller is not None and restricted(caller):
        database = request.app.state.database  # what it may receive, and under which consent
        stored = database.read(answer_for, caller, stored)
    headers: dict[str, str] = {}
    if stored is not None:
        headers = version_headers(stored)
        if result.status == 201:
            headers["Location"] = f"{base_url}/{stored.relative}/_history/{stored.version_id}"
    if stored is None or result.status == 204:
        return Response(status_code=result.status, headers=headers)
    wanted = prefer(request, "return") or "representation"
    if result.issues and wanted != "operationoutcome":
        headers[OUTCOME_HEADER] = _compact(
            outcome(result.issues)
        )  # the body is the resource: warnings ride here
    if wanted == "minimal":
        return Response(status_code=result.status, headers=headers)
    if wanted == "operationoutcome":
        return fhir_json(_information(result), result.status, headers)
    if stored.deleted:
        return fhir_json(_information(result), result.status, headers)
    return fhir_json(stored.content, result.status, headers)
