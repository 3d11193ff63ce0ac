"""SMART Backend Services endpoints: ``/.well-known/smart-configuration`` and ``POST /auth/token``.

Thin: the token service checks the client assertion and signs the access token. Every answer of
the token endpoint, issued or refused, is audited; a refusal is a 401 (or 400 for a bad grant or
scope) with an OperationOutcome that never quotes the assertion.
"""

from __future__ import annotations

from functools import partial
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from fhir_gateway.api.deps import FORM_TYPE, BaseUrlDep, media_type
from fhir_gateway.errors import GatewayError, InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from fhir_gateway.security import CLIENT_ALGS, SecurityService, peek

__all__ = ["router", "TOKEN_PATH"]

router = APIRouter(tags=["auth"])

TOKEN_PATH = "/auth/token"
_MAX_FORM = 64 * 1024  # an assertion is a few kilobytes
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_SCOPES = [
    "system/*.rs",
    "system/*.cruds",
    "system/Task.rus",
    "system/Task.rs",
    "system/ServiceRequest.rs",
    "system/Patient.rs",
    "system/CarePlan.rs",
    "system/Consent.cruds",
    "system/AuditEvent.rs",
    "system/*.read",
    "system/*.write",
]


def _service(request: Request) -> SecurityService:
    return request.app.state.security  # type: ignore[no-any-return]


@router.get("/.well-known/smart-configuration", include_in_schema=False)
def smart_configuration(base: BaseUrlDep) -> Response:
    config: dict[str, Any] = {
        "issuer": base,
        "token_endpoint": f"{base}{TOKEN_PATH}",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(CLIENT_ALGS),
        "scopes_supported": _SCOPES,
        "response_types_supported": ["token"],
        "capabilities": ["client-confidential-asymmetric", "permission-v2", "permission-v1"],
    }
    return JSONResponse(config)


@router.post(TOKEN_PATH, include_in_schema=False)
async def token(request: Request, base: BaseUrlDep) -> Response:
    service = _service(request)
    address = request.client.host if request.client else None
    form: dict[str, str] = {}
    try:
        form = await _form(request)
        issued = await run_in_threadpool(service.tokens.issue, form, f"{base}{TOKEN_PATH}")
    except GatewayError as exc:
        await run_in_threadpool(
            partial(
                service.auditor.record_token,
                client_id=_claimed(form),
                caller=None,
                status=exc.status,
                address=address,
            )
        )
        raise
    caller = service.tokens.authenticate(issued.response["access_token"], address)
    await run_in_threadpool(
        partial(
            service.auditor.record_token,
            client_id=issued.client.client_id,
            caller=caller,
            status=200,
            address=address,
        )
    )
    return JSONResponse(issued.response, headers=_NO_STORE)


async def _form(request: Request) -> dict[str, str]:
    if media_type(request) != FORM_TYPE:
        raise UnsupportedMediaType(f"The token endpoint takes {FORM_TYPE}")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM:
            raise PayloadTooLarge("The token request is too large")
    try:
        return dict(parse_qsl(body.decode(), keep_blank_values=True))
    except UnicodeDecodeError as exc:
        raise InvalidRequest("The token request is not UTF-8") from exc


def _claimed(form: dict[str, str]) -> str | None:
    """The client id an assertion claims, for the audit trail of a refusal (never the assertion)."""
    try:
        _, claims = peek(form.get("client_assertion") or "")
    except GatewayError:
        return None
    iss = claims.get("iss")
    return iss[:128] if isinstance(iss, str) else None
