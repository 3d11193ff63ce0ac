"""Whole-system interactions: the CapabilityStatement, batch/transaction, system history and search."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from fhir_gateway.api.deps import (
    BaseUrlDep,
    CallerDep,
    DatabaseDep,
    JsonBody,
    SettingsDep,
    prefer,
    search_params_of,
)
from fhir_gateway.api.resources import run_search
from fhir_gateway.api.responses import fhir_json
from fhir_gateway.errors import Forbidden, MethodNotAllowed
from fhir_gateway.services import history as history_svc
from fhir_gateway.services.bundles import process_bundle
from fhir_gateway.services.capability import capability_statement

__all__ = ["router"]

router = APIRouter(tags=["system"])


@router.get("/metadata")
def metadata(request: Request, base: BaseUrlDep) -> Response:
    return fhir_json(capability_statement(request.app, base))


@router.api_route("/metadata", methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
def metadata_is_read_only(request: Request) -> Response:
    raise MethodNotAllowed(
        f"{request.method} is not allowed on /metadata", headers={"Allow": "GET"}
    )


@router.get("/_rules", include_in_schema=False)
def rules_listing(request: Request, caller: CallerDep) -> Response:
    """The app's write rules by hook point, in the order they run (admins only, as /metrics)."""
    if caller.role not in ("admin", "system"):
        raise Forbidden("Only an admin client may list the write rules")
    return JSONResponse(request.app.state.rules.listing(), headers={"Cache-Control": "no-store"})


@router.get("/_history")
def system_history(
    request: Request, db: DatabaseDep, caller: CallerDep, base: BaseUrlDep, settings: SettingsDep
) -> Response:
    return fhir_json(
        db.read(
            history_svc.history_bundle,
            request.query_params.multi_items(),
            caller=caller,
            base_url=base,
            settings=settings,
        )
    )


@router.get("/")
async def system_search(
    request: Request, db: DatabaseDep, caller: CallerDep, base: BaseUrlDep, settings: SettingsDep
) -> Response:
    return await run_search(
        request,
        db,
        None,
        search_params_of(request),
        caller=caller,
        base_url=base,
        settings=settings,
    )


@router.post("/")
def batch_or_transaction(
    request: Request,
    body: JsonBody,
    db: DatabaseDep,
    caller: CallerDep,
    base: BaseUrlDep,
    settings: SettingsDep,
) -> Response:
    representation = prefer(request, "return") == "representation"
    bundle = db.write(
        process_bundle,
        body,
        caller,
        base_url=base,
        settings=settings,
        prefer_representation=representation,
    )
    return fhir_json(bundle)
