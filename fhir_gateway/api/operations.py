"""FHIR operations of the care-plan engine: ``PlanDefinition/$apply``, instance and type level,
POST (a Parameters body) and GET (parameters in the query). Nothing is stored."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from fhir_gateway.api.deps import CallerDep, DatabaseDep, JsonBody, SettingsDep, search_params_of
from fhir_gateway.api.responses import fhir_json
from fhir_gateway.careplans import (
    apply_plan_definition,
    parameters_from_query,
    parameters_from_resource,
)
from fhir_gateway.errors import Forbidden

__all__ = ["router"]

router = APIRouter(tags=["operations"])


def _allowed(caller: CallerDep) -> None:
    if not caller.can("PlanDefinition", "r"):
        raise Forbidden("Not permitted: $apply needs read access to PlanDefinition")


@router.post("/PlanDefinition/$apply")
def apply_type_post(
    body: JsonBody, db: DatabaseDep, settings: SettingsDep, caller: CallerDep
) -> Response:
    _allowed(caller)
    return fhir_json(db.read(apply_plan_definition, settings, parameters_from_resource(body)))


@router.get("/PlanDefinition/$apply")
def apply_type_get(
    request: Request, db: DatabaseDep, settings: SettingsDep, caller: CallerDep
) -> Response:
    _allowed(caller)
    return fhir_json(
        db.read(apply_plan_definition, settings, parameters_from_query(search_params_of(request)))
    )


@router.post("/PlanDefinition/{res_id}/$apply")
def apply_post(
    res_id: str, body: JsonBody, db: DatabaseDep, settings: SettingsDep, caller: CallerDep
) -> Response:
    _allowed(caller)
    return fhir_json(
        db.read(apply_plan_definition, settings, parameters_from_resource(body), res_id)
    )


@router.get("/PlanDefinition/{res_id}/$apply")
def apply_get(
    res_id: str, request: Request, db: DatabaseDep, settings: SettingsDep, caller: CallerDep
) -> Response:
    _allowed(caller)
    params = parameters_from_query(search_params_of(request))
    return fhir_json(db.read(apply_plan_definition, settings, params, res_id))
