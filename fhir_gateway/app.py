"""Composition root: the only module that wires settings, database and routers together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from fhir_gateway import adherence, careplans, contacts, monitors, relapse
from fhir_gateway.api import auth, intake, operations, resources, system
from fhir_gateway.api import contacts as contacts_api
from fhir_gateway.api import mhca as mhca_api
from fhir_gateway.api import monitors as monitors_api
from fhir_gateway.api import privacy as privacy_api
from fhir_gateway.api.errors import install_error_handlers
from fhir_gateway.api.gate import SecurityMiddleware
from fhir_gateway.api.unstorable import refuse_nul_in_url
from fhir_gateway.hooks import Rules
from fhir_gateway.observability import FASTAPI_TELEMETRY, install_observability
from fhir_gateway.observability.heap import freeze_start_up_heap
from fhir_gateway.security import SecurityService, install_policy, install_row_policy
from fhir_gateway.security.logs import redact_secrets_in_logs
from fhir_gateway.services import discharge, mhca
from fhir_gateway.services.ingest import Intake
from fhir_gateway.settings import Settings, get_settings
from fhir_gateway.store.db import Database
from fhir_gateway.web import install_web

__all__ = ["create_app", "build_rules", "install_rules"]

log = logging.getLogger("fhir_gateway")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    listener = None
    settings: Settings = app.state.settings
    if settings.mllp_enabled:
        from fhir_gateway.workers.mllp import start_listener

        listener = await start_listener(app.state.intake, settings)
    delivery = _start_delivery(app) if settings.outbox_worker else None
    freeze_start_up_heap(settings.gc_freeze_at_start)
    try:
        yield
    finally:
        app.state.security.close()  # store the audit events still queued
        if listener is not None:
            await listener.close()
        if delivery is not None:
            delivery()


def _start_delivery(app: FastAPI):  # type: ignore[no-untyped-def]
    """The outbox worker in a background thread (``serve --worker``); returns its stop function."""
    import threading

    from fhir_gateway.workers.delivery import DeliveryWorker

    worker = DeliveryWorker(app.state.database, app.state.settings)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), name="outbox-worker", daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(timeout=30)
        worker.close()

    return halt


def build_rules(settings: Settings) -> Rules:
    """Every rule that rides on resource writes, in the order it runs: within each hook point
    (``fhir_gateway.hooks``) the rules run in the order they are registered here (the consent
    grants ask ``first=True``). One ``Rules`` per app; ``fhir-gateway rules`` lists it. Building
    it changes nothing outside the object it returns."""
    from fhir_gateway import assessments, notifications, workflow

    rules = Rules(settings)
    discharge.install(rules)  # REST and transaction writes that finish an inpatient Encounter
    careplans.install(rules, settings)  # discharge → plan, A13 → revoke, approval, consent rules
    workflow.install(rules, settings)  # referral state machine and consequences
    notifications.install(rules, settings)  # subscriptions and Da Vinci messages → outbox
    install_policy(rules, settings)  # who sees what, Part 2 labels and consents, disclosures
    monitors.install(rules, settings)  # readmission and crisis alerts at the Encounter write
    mhca.install(rules, settings)  # India's Mental Healthcare Act: releases, ABDM ids whole
    assessments.install(rules, settings)  # QuestionnaireResponse checked, scored into Observations
    # after the instruments' scoring (install): its Observations fire the plan rules
    assessments.install_plan_rules(rules, settings)  # screening results revise the plan; SDOH
    assessments.install_measurement(rules)  # measurement-based care: due PHQ-9/GAD-7, remission
    assessments.install_safety_plan(rules, settings)  # a completed safety plan → its CarePlan
    contacts.install(rules, settings)  # caring contacts: series at discharge, replies, consent
    adherence.install(rules, settings)  # PDC per medication class, refill and injection items
    relapse.install(rules, settings)  # relapse-prevention plans, warning-sign reports → items
    notifications.install_numbering(rules)  # last: what the others write at the commit notifies
    return rules


def install_rules(settings: Settings, database: Database) -> Rules:
    """``build_rules`` given to ``database``, for any process that writes (the server, the MLLP
    listener, the worker, the monitors, the demo): its sessions carry them from now on. The row
    policy the store applies is the same for every app (installing it twice changes nothing)."""
    install_row_policy()
    rules = build_rules(settings)
    database.use_rules(rules)
    return rules


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level.upper())
    redact_secrets_in_logs()
    app = FastAPI(
        title="fhir-gateway",
        description="FHIR R4 care-coordination gateway",
        docs_url="/_docs",
        redoc_url=None,
        openapi_url="/_openapi.json",
        lifespan=_lifespan,
        dependencies=[Depends(refuse_nul_in_url)],
        telemetry=FASTAPI_TELEMETRY,  # off: its spans carry query strings (PHI); observability.http traces
    )
    app.state.settings = settings
    app.state.database = database or Database(
        settings.database_url, pool_size=settings.db_pool_size
    )
    app.state.rules = install_rules(settings, app.state.database)
    app.state.security = SecurityService(settings, app.state.database)
    app.state.intake = Intake(app.state.database, settings)
    install_error_handlers(app)

    @app.get("/_health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    _install_gate(app, settings)
    install_observability(app, settings)  # health, /metrics, traces, log format (outermost layer)
    app.include_router(auth.router)  # /auth/token, /.well-known/smart-configuration
    # fixed paths before /{res_type}
    app.state.fhir_routers = [
        system.router,
        intake.router,
        operations.router,
        monitors_api.router,
        privacy_api.router,
        mhca_api.router,
        contacts_api.router,
        resources.router,
    ]
    install_web(app)  # people's pages under /web: partner inbox, case-manager dashboard
    for router in app.state.fhir_routers:
        app.include_router(router)
    _index_routes(app)  # a request is matched only against the routers that could answer it
    return app


def _index_routes(app: FastAPI) -> None:
    """Routes matched by the path's shape (``api.route_index``), if this FastAPI allows it; else
    matched as FastAPI does, only slower."""
    try:
        from fhir_gateway.api.route_index import index_routes
    except ImportError as exc:  # FastAPI's private routing classes moved
        log.warning("Routes are matched one by one (route index unavailable: %s)", exc)
        return
    if not index_routes(app):
        log.warning("Routes are matched one by one (this FastAPI's routers differ)")


def _install_gate(app: FastAPI, settings: Settings) -> None:
    """Authentication, rate limits and audit on every request; CORS (outermost) when configured."""
    app.add_middleware(SecurityMiddleware, service=app.state.security)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Exist",
                "If-None-Match",
                "Prefer",
            ],
            expose_headers=["ETag", "Location", "Last-Modified", "Retry-After"],
        )
