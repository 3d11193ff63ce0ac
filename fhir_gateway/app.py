"""Composition root: the only module that wires settings, database and routers together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from fhir_gateway.api import intake, resources, system
from fhir_gateway.api.errors import install_error_handlers
from fhir_gateway.services import discharge
from fhir_gateway.services.ingest import Intake
from fhir_gateway.settings import Settings, get_settings
from fhir_gateway.store.db import Database

__all__ = ["create_app"]

log = logging.getLogger("fhir_gateway")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    listener = None
    settings: Settings = app.state.settings
    if settings.mllp_enabled:
        from fhir_gateway.workers.mllp import start_listener

        listener = await start_listener(app.state.intake, settings)
    try:
        yield
    finally:
        if listener is not None:
            await listener.close()


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level.upper())
    app = FastAPI(
        title="fhir-gateway",
        description="FHIR R4 care-coordination gateway",
        docs_url="/_docs",
        redoc_url=None,
        openapi_url="/_openapi.json",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.database = database or Database(settings.database_url, pool_size=settings.db_pool_size)
    discharge.install()  # REST and transaction writes that finish an inpatient Encounter
    app.state.intake = Intake(app.state.database, settings)
    install_error_handlers(app)

    @app.get("/_health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    # fixed paths before /{res_type}
    app.state.fhir_routers = [system.router, intake.router, resources.router]
    for router in app.state.fhir_routers:
        app.include_router(router)
    return app
