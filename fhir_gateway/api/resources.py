"""The FHIR RESTful interactions on types and instances: read, vread, create, update, patch,
delete, history and search. Thin: each route parses HTTP and calls one service function."""

from __future__ import annotations

from collections.abc import Callable
from email.utils import format_datetime
from typing import Concatenate, ParamSpec
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from fhir_gateway.api.cancel import until_disconnect
from fhir_gateway.api.deps import (
    FORM_TYPE,
    BaseUrlDep,
    CallerDep,
    DatabaseDep,
    JsonBody,
    RawBody,
    SettingsDep,
    if_match,
    media_type,
    prefer,
    request_base_url,
    request_caller,
    search_params_of,
)
from fhir_gateway.api.gate import audit_committed, audit_now, audited_write
from fhir_gateway.api.responses import fhir_json, resource_response, result_response
from fhir_gateway.context import Caller
from fhir_gateway.errors import InvalidRequest, InvalidSearch, UnsupportedMediaType
from fhir_gateway.security import read_audit_event, search_audit_events
from fhir_gateway.services import history as history_svc
from fhir_gateway.services import resources as svc
from fhir_gateway.settings import Settings
from fhir_gateway.store.budget import Budget
from fhir_gateway.store.db import Database

__all__ = ["router"]

router = APIRouter(tags=["resources"])
P = ParamSpec("P")
_PATH_PARAMS = {
    "parameters": [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in ("res_type", "res_id")
    ]
}


# --- type level --------------------------------------------------------------------------------


@router.get("/{res_type}/_history")
def type_history(
    res_type: str,
    request: Request,
    db: DatabaseDep,
    caller: CallerDep,
    base: BaseUrlDep,
    settings: SettingsDep,
) -> Response:
    svc.check_type(res_type)
    return fhir_json(
        db.read(
            history_svc.history_bundle,
            request.query_params.multi_items(),
            caller=caller,
            base_url=base,
            settings=settings,
            res_type=res_type,
        )
    )


# Read by id is the hottest route. It is matched right after the one path it must not shadow
# (``/{res_type}/_history``): no route in between full-matches a two-segment GET. And it takes
# the request alone: FastAPI's path-parameter and dependency machinery cost it ~50 µs, a tenth
# of its time, for values at hand here. Its audit row is written here, before the answer is
# returned. On SQLite the read and the row take microseconds of CPU and no waiting (WAL: readers
# never wait for the writer), so they run on the event loop: handing them to a worker thread cost
# more than the work. Only when another transaction holds the write lock does the row wait for it
# on a worker thread. PostgreSQL's round trips, and a read through the row policy (which may
# account for a Part 2 disclosure, a write), are waited for on a worker thread.
@router.get("/{res_type}/{res_id}", openapi_extra=_PATH_PARAMS)
async def read(request: Request) -> Response:
    db: Database = request.app.state.database
    if (
        db.is_postgres
        or svc.restricted(request_caller(request))
        or request.path_params["res_type"] == "AuditEvent"
    ):
        return await run_in_threadpool(_read_audited, request)
    response = _read(request)
    if not audit_now(request, response.status_code, wait=False):
        await run_in_threadpool(audit_now, request, response.status_code)
    return response


def _read_audited(request: Request) -> Response:
    response = _read(request)
    audit_now(request, response.status_code)
    return response


def _read(request: Request) -> Response:
    res_type, res_id = request.path_params["res_type"], request.path_params["res_id"]
    db: Database = request.app.state.database
    caller = request_caller(request)
    if res_type == "AuditEvent":
        event = db.read(read_audit_event, res_id, caller)
        if event is not None:  # a row of the trail; else an AuditEvent stored as a resource
            return fhir_json(event, 200, {"ETag": 'W/"1"'})
    if svc.restricted(caller):  # row checked, copy shaped for this caller
        stored = db.read(svc.read_served, res_type, res_id, caller)
        if request.headers.get("if-none-match") == stored.etag:
            return Response(status_code=304, headers={"ETag": stored.etag})
        return resource_response(stored)
    raw = svc.read_raw(db, res_type, res_id, caller)
    etag = f'W/"{raw.version_id}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    headers = {"ETag": etag, "Last-Modified": format_datetime(raw.last_updated, usegmt=True)}
    return fhir_json(raw.body, 200, headers)


@router.post("/{res_type}/_search")
async def search_post(
    res_type: str,
    request: Request,
    body: RawBody,
    db: DatabaseDep,
    caller: CallerDep,
    base: BaseUrlDep,
    settings: SettingsDep,
) -> Response:
    svc.check_type(res_type)
    ctype = media_type(request)
    if ctype and ctype != FORM_TYPE:
        raise UnsupportedMediaType(f"POST _search takes {FORM_TYPE}, not {ctype}")
    try:
        form = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise InvalidSearch("The form body is not UTF-8") from exc
    params = search_params_of(request) + form
    return await run_search(
        request, db, res_type, params, caller=caller, base_url=base, settings=settings
    )


# The type-level search takes the request alone, as read does: FastAPI's dependency machinery
# cost the event loop more than the rest of the route (a partner polling its inbox), for values
# at hand here.
@router.get("/{res_type}", openapi_extra={"parameters": _PATH_PARAMS["parameters"][:1]})
async def search_get(request: Request) -> Response:
    res_type = request.path_params["res_type"]
    svc.check_type(res_type)
    return await run_search(
        request,
        request.app.state.database,
        res_type,
        search_params_of(request),
        caller=request_caller(request),
        base_url=request_base_url(request),
        settings=request.app.state.settings,
    )


# A partner polling its inbox (``Task?owner=…&status=requested``) is a search of a simple shape:
# one prebuilt statement on index ranges, a fraction of a millisecond on SQLite, where handing it
# to a worker thread and watching for the client's disconnect cost more than the search. It is
# tried on the event loop with a budget this short, so the loop never waits long for it: past it,
# or for any other search, the search runs on a worker thread as below.
_QUICK_SECONDS = 0.02


async def run_search(
    request: Request,
    db: Database,
    res_type: str | None,
    params: list[tuple[str, str]],
    *,
    caller: Caller,
    base_url: str,
    settings: Settings,
) -> Response:
    """The search on a worker thread, within its time budget, stopped if the client leaves; its
    audit row written there too, before the Bundle is returned. A quick search on SQLite is
    answered on the event loop, as a read by id is."""
    budget = Budget(settings.search_timeout)
    strict = prefer(request, "handling") == "strict"
    if not db.is_postgres and res_type not in (None, "AuditEvent"):
        found = svc.quick_search(
            db,
            res_type,
            params,
            caller=caller,
            base_url=base_url,
            settings=settings,
            within=_QUICK_SECONDS,
            strict=strict,
        )
        if found is not None:
            if not audit_now(request, 200, wait=False):
                await run_in_threadpool(audit_now, request, 200)
            return fhir_json(found)

    def work() -> bytes:
        if res_type == "AuditEvent":  # the trail's rows, read as AuditEvents
            found = db.read(
                search_audit_events,
                params,
                caller=caller,
                base_url=base_url,
                settings=settings,
                budget=budget,
            )
        else:
            found = svc.search(
                db,
                res_type,
                params,
                caller=caller,
                base_url=base_url,
                settings=settings,
                strict=strict,
                budget=budget,
            )
        audit_now(request, 200)
        return found

    return fhir_json(await until_disconnect(request, budget, work))


@router.post("/{res_type}")
def create(
    res_type: str,
    request: Request,
    body: JsonBody,
    db: DatabaseDep,
    caller: CallerDep,
    base: BaseUrlDep,
) -> Response:
    result = _write(
        request,
        db,
        svc.create,
        res_type,
        body,
        caller,
        if_none_exist=request.headers.get("if-none-exist"),
    )
    return result_response(result, request, base, caller)


@router.put("/{res_type}")
def conditional_update(
    res_type: str,
    request: Request,
    body: JsonBody,
    db: DatabaseDep,
    caller: CallerDep,
    base: BaseUrlDep,
) -> Response:
    params = _criteria(request)
    result = _write(
        request,
        db,
        svc.conditional_update,
        res_type,
        params,
        body,
        caller,
        if_match=if_match(request),
    )
    return result_response(result, request, base, caller)


@router.patch("/{res_type}")
def conditional_patch(
    res_type: str,
    request: Request,
    body: JsonBody,
    db: DatabaseDep,
    caller: CallerDep,
    base: BaseUrlDep,
) -> Response:
    params = _criteria(request)
    result = _write(
        request,
        db,
        svc.conditional_patch,
        res_type,
        params,
        body,
        media_type(request),
        caller,
        if_match=if_match(request),
    )
    return result_response(result, request, base, caller)


@router.delete("/{res_type}")
def conditional_delete(
    res_type: str, request: Request, db: DatabaseDep, caller: CallerDep, base: BaseUrlDep
) -> Response:
    result = _write(request, db, svc.conditional_delete, res_type, _criteria(request), caller)
    return result_response(result, request, base, caller)


def _write(
    request: Request,
    db: Database,
    fn: Callable[Concatenate[Session, P], svc.WriteResult],
    *args: P.args,
    **kwargs: P.kwargs,
) -> svc.WriteResult:
    """A write and its audit row, in one transaction."""
    result = db.write(audited_write(request, fn), *args, **kwargs)
    audit_committed(request)
    return result


def _criteria(request: Request) -> list[tuple[str, str]]:
    params = search_params_of(request)
    if not params:
        raise InvalidRequest("A conditional interaction on a type needs search criteria")
    return params


# --- instance level ----------------------------------------------------------------------------


@router.get("/{res_type}/{res_id}/_history/{version}")
def vread(res_type: str, res_id: str, version: str, db: DatabaseDep, caller: CallerDep) -> Response:
    return resource_response(db.read(svc.vread_served, res_type, res_id, version, caller))


@router.get("/{res_type}/{res_id}/_history")
def instance_history(
    res_type: str,
    res_id: str,
    request: Request,
    db: DatabaseDep,
    caller: CallerDep,
    base: BaseUrlDep,
    settings: SettingsDep,
) -> Response:
    svc.check_type(res_type)
    return fhir_json(
        db.read(
            history_svc.history_bundle,
            request.query_params.multi_items(),
            caller=caller,
            base_url=base,
            settings=settings,
            res_type=res_type,
            res_id=res_id,
        )
    )


@router.put("/{res_type}/{res_id}")
def update(
    res_type: str,
    res_id: str,
    request: Request,
    body: JsonBody,
    db: DatabaseDep,
    caller: CallerDep,
    base: BaseUrlDep,
) -> Response:
    result = _write(
        request, db, svc.update, res_type, res_id, body, caller, if_match=if_match(request)
    )
    return result_response(result, request, base, caller)


@router.patch("/{res_type}/{res_id}")
def patch(
    res_type: str,
    res_id: str,
    request: Request,
    body: JsonBody,
    db: DatabaseDep,
    caller: CallerDep,
    base: BaseUrlDep,
) -> Response:
    result = _write(
        request,
        db,
        svc.patch,
        res_type,
        res_id,
        body,
        media_type(request),
        caller,
        if_match=if_match(request),
    )
    return result_response(result, request, base, caller)


@router.delete("/{res_type}/{res_id}")
def delete(
    res_type: str,
    res_id: str,
    request: Request,
    db: DatabaseDep,
    caller: CallerDep,
    base: BaseUrlDep,
) -> Response:
    return result_response(
        _write(request, db, svc.delete, res_type, res_id, caller), request, base, caller
    )
