"""Dependencies shared by the routers: the database, settings, caller, base URL, request body."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from fhir_gateway.api.unstorable import refuse_nul_in_form, refuse_nul_in_json
from fhir_gateway.context import SYSTEM, Caller
from fhir_gateway.errors import InvalidRequest, PayloadTooLarge, Unauthorized, UnsupportedMediaType
from fhir_gateway.fhir.numbers import MAX_INT32, whole_number
from fhir_gateway.fhir.validation import parse_json
from fhir_gateway.settings import Settings
from fhir_gateway.store.db import Database

__all__ = [
    "DatabaseDep",
    "SettingsDep",
    "CallerDep",
    "BaseUrlDep",
    "JsonBody",
    "RawBody",
    "request_caller",
    "request_base_url",
    "prefer",
    "if_match",
    "media_type",
    "search_params_of",
]

JSON_TYPES = (
    "application/fhir+json",
    "application/json",
    "application/json-patch+json",
    "text/json",
)
FORM_TYPE = "application/x-www-form-urlencoded"


async def get_database(request: Request) -> Database:
    return request.app.state.database  # type: ignore[no-any-return]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def request_caller(request: Request) -> Caller:
    # The security middleware puts the authenticated Caller here. Without one, the gateway acts as
    # itself only when authentication is off; otherwise a route missed by the gate fails closed.
    caller = getattr(request.state, "caller", None)
    if caller is not None:
        return caller  # type: ignore[no-any-return]
    if request.app.state.settings.auth_enabled:
        raise Unauthorized("This request carries no authenticated caller")
    return SYSTEM


async def get_caller(request: Request) -> Caller:
    return request_caller(request)


async def get_base_url(request: Request) -> str:
    return request_base_url(request)


def request_base_url(request: Request) -> str:
    configured = request.app.state.settings.base_url
    return (configured or str(request.base_url)).rstrip("/")


async def get_raw_body(request: Request) -> bytes:
    limit = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body is larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if media_type(request) == FORM_TYPE:
        refuse_nul_in_form(body)
    return body


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def get_json_body(request: Request) -> Any:
    raw = await get_raw_body(request)
    ctype = media_type(request)
    if ctype and ctype not in JSON_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {ctype} is not supported; send application/fhir+json"
        )
    if not raw.strip():
        raise InvalidRequest("The request has no body")
    settings = request.app.state.settings
    value = parse_json(raw, max_depth=settings.max_json_depth, max_values=settings.max_json_values)
    refuse_nul_in_json(raw, value)
    return value


DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CallerDep = Annotated[Caller, Depends(get_caller)]
BaseUrlDep = Annotated[str, Depends(get_base_url)]
JsonBody = Annotated[Any, Depends(get_json_body)]
RawBody = Annotated[bytes, Depends(get_raw_body)]


def prefer(request: Request, key: str) -> str | None:
    """One token of the Prefer header, e.g. prefer(request, "return") → "minimal"."""
    for part in request.headers.get("prefer", "").split(";"):
        for item in part.split(","):
            name, _, value = item.strip().partition("=")
            if name.strip().lower() == key:
                return value.strip().strip('"').lower()
    return None


def if_match(request: Request) -> int | None:
    value = request.headers.get("if-match")
    if not value:
        return None
    text = value.strip().removeprefix("W/").strip('"')
    version = whole_number(text, ceiling=MAX_INT32 + 1)  # past any version: it cannot match
    if version is None:
        raise InvalidRequest(f'If-Match must be an ETag like W/"3", not {value[:40]!r}')
    return version


_NOT_SEARCH = frozenset({"_format", "_pretty"})


def search_params_of(request: Request) -> list[tuple[str, str]]:
    """The query's search parameters in order, without the ones about the response format."""
    return [(k, v) for k, v in request.query_params.multi_items() if k not in _NOT_SEARCH]
