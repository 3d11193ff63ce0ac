"""Intake over HTTP: raw HL7 v2 (``POST /hl7v2``), Da Vinci notifications
(``POST /$process-message``), and the inbox (``GET /inbox``, ``GET /inbox/{id}``). Thin: each
route calls the intake service, which owns the transactions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from fhir_gateway.api.deps import CallerDep, RawBody, media_type
from fhir_gateway.api.responses import FHIR_JSON
from fhir_gateway.api.unstorable import refuse_nul_in_json_bytes
from fhir_gateway.errors import InvalidRequest, UnsupportedMediaType
from fhir_gateway.fhir.numbers import MAX_INT32
from fhir_gateway.services.ingest import INBOX_STATUSES, Intake

__all__ = ["router", "HL7_MEDIA_TYPE"]

router = APIRouter(tags=["intake"])

HL7_MEDIA_TYPE = "x-application/hl7-v2+er7"
_HL7_TYPES = (HL7_MEDIA_TYPE, "application/hl7-v2", "text/plain", "")
_JSON_TYPES = ("application/fhir+json", "application/json", "")
_MAX_OFFSET = 2**63 - 1  # what SQL OFFSET takes


def _intake(request: Request) -> Intake:
    return request.app.state.intake  # type: ignore[no-any-return]


@router.post("/hl7v2")
async def hl7v2(request: Request, body: RawBody, caller: CallerDep) -> Response:
    if media_type(request) not in _HL7_TYPES:
        raise UnsupportedMediaType(f"POST /hl7v2 takes {HL7_MEDIA_TYPE} or text/plain")
    if not body.strip():
        raise InvalidRequest("The request has no HL7 message")
    peer = request.client.host if request.client else None
    answer = await run_in_threadpool(
        _intake(request).receive_hl7, body, channel="http", peer=peer, caller=caller
    )
    return Response(answer.body, status_code=answer.http_status, media_type=HL7_MEDIA_TYPE)


@router.post("/$process-message")
async def process_message(request: Request, body: RawBody, caller: CallerDep) -> Response:
    if media_type(request) not in _JSON_TYPES:
        raise UnsupportedMediaType("$process-message takes application/fhir+json")
    refuse_nul_in_json_bytes(body)
    peer = request.client.host if request.client else None
    answer = await run_in_threadpool(_intake(request).receive_fhir, body, peer=peer, caller=caller)
    return Response(answer.body, status_code=answer.http_status, media_type=FHIR_JSON)


@router.get("/inbox")
async def inbox_list(
    request: Request,
    status: str | None = None,
    _count: Annotated[int, Query(ge=0)] = 50,
    _offset: Annotated[int, Query(ge=0, le=MAX_INT32)] = 0,
) -> Response:
    if status is not None and status not in INBOX_STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(INBOX_STATUSES)}")
    if not (0 <= _count and 0 <= _offset <= _MAX_OFFSET):
        raise InvalidRequest(f"_count and _offset must be from 0 (_offset at most {_MAX_OFFSET})")
    rows = await run_in_threadpool(
        _intake(request).listing, status=status, limit=min(_count, 1000), offset=_offset
    )
    return JSONResponse(
        {"status": status, "count": len(rows), "messages": [r.summary() for r in rows]}
    )


@router.get("/inbox/{message_id}")
async def inbox_show(request: Request, message_id: int) -> Response:
    row = await run_in_threadpool(_intake(request).show, message_id)
    detail: dict[str, Any] = row.summary()
    detail["warnings"] = row.warnings
    detail["raw"] = row.raw.decode("utf-8", "replace")
    detail["answer"] = row.answer.decode("utf-8", "replace") if row.answer else None
    return JSONResponse(detail)
