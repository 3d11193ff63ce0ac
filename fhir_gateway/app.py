"""Composition root: the only module that wires settings, database and routers together."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from fhir_gateway.api import resources, system
from fhir_gateway.api.errors import install_error_handlers
from fhir_gateway.settings import Settings, get_settings
from fhir_gateway.store.db import Database

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level.upper())
    app = FastAPI(
        title="fhir-gateway",
        description="FHIR R4 care-coordination gateway",
        docs_url="/_docs",
        redoc_url=None,
        openapi_url="/_openapi.json",
    )
    app.state.settings = settings
    app.state.database = database or Database(settings.database_url, pool_size=settings.db_pool_size)
    install_error_handlers(app)

    @app.get("/_health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.state.fhir_routers = [system.router, resources.router]  # fixed paths before /{res_type}
    for router in app.state.fhir_routers:
        app.include_router(router)
    return app
