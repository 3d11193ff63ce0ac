"""The ``fhir-gateway`` command: thin commands that parse arguments and call services."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from fhir_gateway.cli.bulk import import_command
from fhir_gateway.cli.clients import apply_insecure_dev, auth_banner, clients_app
from fhir_gateway.cli.conformance import conformance_command
from fhir_gateway.cli.convert import convert_command
from fhir_gateway.cli.database import open_database, upgrade_schema
from fhir_gateway.cli.demo import demo_command, seed_at_start
from fhir_gateway.cli.intake import enable_mllp_in_serve, inbox_app, mllp_command
from fhir_gateway.cli.monitors import monitors_app, report_app
from fhir_gateway.cli.operations import serve_metrics_port, share_metrics_between
from fhir_gateway.cli.privacy import disclosures_command
from fhir_gateway.cli.rules import rules_command
from fhir_gateway.cli.users import users_app, web_banner
from fhir_gateway.cli.workflow import (
    enable_worker_in_serve,
    outbox_app,
    referral_app,
    worker_command,
)

__all__ = ["app", "main"]

app = typer.Typer(no_args_is_help=True, help="FHIR care-coordination gateway")
db_app = typer.Typer(no_args_is_help=True, help="Database schema")
app.add_typer(db_app, name="db")
app.command("convert")(convert_command)
app.command("import")(import_command)
app.command("conformance")(conformance_command)
app.command("mllp")(mllp_command)
app.command("demo")(demo_command)
app.add_typer(inbox_app, name="inbox")
app.add_typer(clients_app, name="clients")
app.command("worker")(worker_command)
app.add_typer(outbox_app, name="outbox")
app.add_typer(referral_app, name="referral")
app.add_typer(monitors_app, name="monitors")
app.add_typer(report_app, name="report")
report_app.command("disclosures")(disclosures_command)
app.add_typer(users_app, name="users")
app.command("rules")(rules_command)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8080,
    workers: Annotated[
        int, typer.Option(help="Server processes (PostgreSQL for more than one)")
    ] = 1,
    migrate: Annotated[bool, typer.Option(help="Bring the schema up to date first")] = True,
    mllp: Annotated[bool, typer.Option("--mllp", help="Also run the MLLP listener")] = False,
    mllp_port: Annotated[int | None, typer.Option(help="MLLP port (implies --mllp)")] = None,
    worker: Annotated[
        bool, typer.Option("--worker", help="Also run the outbox delivery worker")
    ] = False,
    insecure_dev: Annotated[
        bool, typer.Option("--insecure-dev", help="No authentication (loopback only)")
    ] = False,
    ssl_certfile: Annotated[str | None, typer.Option(help="PEM certificate: serve HTTPS")] = None,
    ssl_keyfile: Annotated[
        str | None, typer.Option(help="PEM private key of --ssl-certfile")
    ] = None,
) -> None:
    """Run the FHIR server (uvicorn) on FHIR_GATEWAY_DATABASE_URL."""
    import uvicorn

    from fhir_gateway.settings import get_settings
    from fhir_gateway.workers.http import NoDelayHTTP

    if mllp or mllp_port is not None:
        enable_mllp_in_serve(mllp_port)
    if worker:
        enable_worker_in_serve()
    apply_insecure_dev(host, insecure_dev)
    settings = get_settings()
    metrics_dir = share_metrics_between(workers)  # before anything imports prometheus_client
    if migrate:
        upgrade_schema(settings.database_url)
    seed_at_start(settings)  # shipped care-plan templates and partner directory (idempotent)
    typer.echo(
        f"fhir-gateway on http://{host}:{port}/  (database: {_safe_url(settings.database_url)})"
    )
    typer.echo(f"  capability statement: http://{host}:{port}/metadata")
    base = f"http{'s' if ssl_certfile else ''}://{host}:{port}"
    typer.echo(auth_banner(settings.auth_enabled, base))
    typer.echo(web_banner(base))
    side_port = serve_metrics_port(settings)  # FHIR_GATEWAY_METRICS_PORT: /metrics without a token
    try:
        uvicorn.run(
            "fhir_gateway.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            http=NoDelayHTTP,
        )
    finally:
        side_port()
        metrics_dir()


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply the Alembic migrations to FHIR_GATEWAY_DATABASE_URL."""
    from fhir_gateway.settings import get_settings

    upgrade_schema(get_settings().database_url, revision)
    typer.echo("schema up to date")


@app.command()
def reindex(
    resource_type: Annotated[
        str | None, typer.Option("--type", help="Only this resource type")
    ] = None,
) -> None:
    """Rebuild the search index from the stored resources (after adding a search parameter)."""
    from fhir_gateway.cli.progress import steps
    from fhir_gateway.store.depths import resource_count
    from fhir_gateway.store.index import reindex as run_reindex

    database, _ = open_database()
    total = database.read(resource_count, resource_type)
    started = time.perf_counter()
    with steps(f"Reindexing {total} resources", total=total) as bar:
        count = run_reindex(database.session, resource_type=resource_type, on_batch=bar.advance)
    typer.echo(f"reindexed {count} resources in {time.perf_counter() - started:.1f}s")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    app()
