"""The one place where errors become HTTP answers: every error is an OperationOutcome."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from fhir_gateway.api.responses import fhir_json
from fhir_gateway.errors import GatewayError, Issue

__all__ = ["install_error_handlers"]

log = logging.getLogger("fhir_gateway.api")

_HTTP_CODES = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}


def _outcome(
    status: int, message: str, code: str, headers: Mapping[str, str] | None = None
) -> Response:
    body = {"resourceType": "OperationOutcome", "issue": [Issue(message, code=code).to_fhir()]}
    return fhir_json(body, status, headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, exc: GatewayError) -> Response:
        if exc.status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc.message)
        return fhir_json(exc.outcome(), exc.status, exc.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "Request refused"
        if exc.status_code == 404:
            message = f"No such endpoint: {request.method} {request.url.path}"
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return _outcome(
            exc.status_code, message, _HTTP_CODES.get(exc.status_code, "processing"), exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        return _outcome(400, f"Invalid request: {exc.errors()[:3]}", "invalid")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # A bug, not the client's fault: log it whole, answer without internals.
        log.exception("Unhandled error on %s %s", request.method, request.url.path)
        return _outcome(500, "Internal error; the server log has the details", "exception")
