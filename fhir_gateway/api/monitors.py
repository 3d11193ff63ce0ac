"""``Measure/fuh/$evaluate-measure`` (R4): the FUH MeasureReport for a period, a summary
(``reportType=population``, the default) or one patient's (``subject=Patient/…``). GET with the
parameters in the query, POST with a Parameters body. Nothing is stored (``fhir-gateway report
fuh --store`` stores them). ``GET Measure/fuh`` serves the definition (the store has no Measure type)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from fhir_gateway.api.deps import CallerDep, DatabaseDep, JsonBody, SettingsDep, search_params_of
from fhir_gateway.api.responses import fhir_json
from fhir_gateway.context import Caller
from fhir_gateway.errors import Forbidden, InvalidRequest, NotFound
from fhir_gateway.monitors import fuh_individual, fuh_summary, measure
from fhir_gateway.settings import Settings
from fhir_gateway.store.db import Database

__all__ = ["router", "evaluate_measure"]

router = APIRouter(tags=["monitors"])
_MEASURES = frozenset({"fuh"})


def _day(params: dict[str, str], name: str) -> date:
    value = params.get(name)
    if not value:
        raise InvalidRequest(f"$evaluate-measure needs {name} (a date)")
    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise InvalidRequest(f"{name} is not a date: {value!r}") from exc


def evaluate_measure(
    db: Database, settings: Settings, caller: Caller, measure_id: str, params: dict[str, str]
) -> dict[str, Any]:
    if measure_id not in _MEASURES:
        raise NotFound(f"Measure/{measure_id} is not known")
    if not (caller.can("MeasureReport", "r") and caller.can("Encounter", "r")):
        raise Forbidden(
            "Not permitted: $evaluate-measure reads Encounters and makes MeasureReports"
        )
    start, end = _day(params, "periodStart"), _day(params, "periodEnd")
    if end < start:
        raise InvalidRequest("periodEnd is before periodStart")
    subject = params.get("subject") or params.get("patient")
    kind = params.get("reportType") or ("subject" if subject else "population")
    if kind == "subject":
        if not subject:
            raise InvalidRequest("reportType=subject needs subject=Patient/…")
        subject = subject if "/" in subject else f"Patient/{subject}"
        return db.read(fuh_individual, settings, subject, start, end)
    if kind != "population":
        raise InvalidRequest(f"reportType {kind!r} is not supported (population or subject)")
    return db.read(fuh_summary, settings, start, end)


def _from_parameters(body: Any) -> dict[str, str]:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise InvalidRequest("POST $evaluate-measure takes a Parameters resource")
    out = {}
    for p in body.get("parameter", []):
        value = next((v for k, v in p.items() if k.startswith("value")), None)
        if isinstance(value, dict):  # valueReference
            value = value.get("reference")
        if p.get("name") and value is not None:
            out[p["name"]] = str(value)
    return out


@router.get("/Measure/fuh")
def fuh_definition(caller: CallerDep) -> Response:
    """The FUH definition MeasureReports point at (``MeasureReport.measure``)."""
    return fhir_json(measure())


@router.get("/Measure/{measure_id}/$evaluate-measure")
def evaluate_get(
    measure_id: str, request: Request, db: DatabaseDep, settings: SettingsDep, caller: CallerDep
) -> Response:
    return fhir_json(
        evaluate_measure(db, settings, caller, measure_id, dict(search_params_of(request)))
    )


@router.post("/Measure/{measure_id}/$evaluate-measure")
def evaluate_post(
    measure_id: str, body: JsonBody, db: DatabaseDep, settings: SettingsDep, caller: CallerDep
) -> Response:
    return fhir_json(evaluate_measure(db, settings, caller, measure_id, _from_parameters(body)))
