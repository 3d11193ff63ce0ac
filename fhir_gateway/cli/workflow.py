"""`fhir-gateway worker`, `fhir-gateway outbox list|show|replay|secret` and
`fhir-gateway referral times`: thin, they call the outbox store, the delivery worker and the
workflow history."""

from __future__ import annotations

import os
import signal
import threading
from typing import Annotated

import orjson
import typer

from fhir_gateway.cli.database import open_database, upgrade_schema

__all__ = ["worker_command", "outbox_app", "referral_app", "enable_worker_in_serve"]

outbox_app = typer.Typer(no_args_is_help=True, help="The outbox of notifications to deliver")
referral_app = typer.Typer(no_args_is_help=True, help="Referral Tasks")


def worker_command(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Stop once no notification is pending")
    ] = False,
    migrate: Annotated[bool, typer.Option(help="Bring the schema up to date first")] = True,
    health_port: Annotated[
        int | None,
        typer.Option(
            "--health-port",
            help="Serve /health/live, /health/ready (recent heartbeat) and /metrics on this port",
        ),
    ] = None,
) -> None:
    """Deliver the outbox (rest-hooks, Da Vinci messages, partner pushes) until stopped; run as many
    as you like on PostgreSQL."""
    from fhir_gateway.app import install_rules
    from fhir_gateway.observability import observe_process
    from fhir_gateway.observability.health import Heartbeat
    from fhir_gateway.observability.heap import freeze_start_up_heap
    from fhir_gateway.store import outbox
    from fhir_gateway.workers.delivery import DeliveryWorker

    database, settings = open_database()
    heartbeat = Heartbeat(settings.worker_heartbeat_max_age)
    stop_health = observe_process(database, settings, health_port=health_port, heartbeat=heartbeat)
    if migrate:
        upgrade_schema(settings.database_url)
    install_rules(
        settings, database
    )  # mirrored partner changes and monitor runs follow every write rule
    worker = DeliveryWorker(database, settings)
    worker.heartbeat = heartbeat
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    freeze_start_up_heap(settings.gc_freeze_at_start)
    try:
        if until_idle:
            while not stop.is_set() and database.read(outbox.counts).get("pending", 0):
                heartbeat.beat()
                if not worker.run_once():
                    stop.wait(settings.outbox_poll_interval)
        else:
            worker.run(stop)
    finally:
        stop_health()
        worker.close()
        database.dispose()


def enable_worker_in_serve() -> None:
    """Tell the app factory (re-read by uvicorn) to run the delivery worker too."""
    from fhir_gateway.settings import get_settings

    os.environ["FHIR_GATEWAY_OUTBOX_WORKER"] = "true"
    get_settings.cache_clear()


@outbox_app.command("list")
def outbox_list(
    status: Annotated[str | None, typer.Option(help="pending | delivered | dead")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, oldest first")] = 50,
) -> None:
    """List notifications (dead letters: --status dead)."""
    from fhir_gateway.store import outbox

    database, _ = open_database()
    rows = database.read(outbox.list_rows, status=status, limit=limit)
    for row in rows:
        typer.echo(
            f"{row.id:>8}  {row.status:<9} {row.channel:<12} {row.attempts:>3}  "
            f"{row.last_status or '-':<4} {row.url}  {row.focus or ''}  {row.last_error or ''}"
        )
    if not rows:
        typer.echo("no notifications", err=True)


@outbox_app.command("show")
def outbox_show(row_id: int) -> None:
    """One notification with every delivery attempt."""
    from fhir_gateway.store import outbox

    database, _ = open_database()
    row = database.read(outbox.get, row_id)
    if row is None:
        raise typer.BadParameter(f"no notification {row_id}")
    attempts = database.read(outbox.attempts_of, row_id)
    detail = {
        **row.summary(),
        "attempts": [
            {
                "n": a.number,
                "at": a.at.isoformat(),
                "worker": a.worker,
                "status": a.http_status,
                "outcome": a.outcome,
                "error": a.error,
            }
            for a in attempts
        ],
    }
    typer.echo(orjson.dumps(detail, option=orjson.OPT_INDENT_2).decode())


@outbox_app.command("replay")
def outbox_replay(
    row_ids: Annotated[
        list[int] | None, typer.Argument(help="Dead letters to deliver again")
    ] = None,
    all_dead: Annotated[bool, typer.Option("--all", help="Every dead letter")] = False,
) -> None:
    """Dead letters back to pending, with a fresh retry window."""
    from fhir_gateway.store import outbox

    if bool(row_ids) == all_dead:
        raise typer.BadParameter("give notification IDs or --all (not both)")
    database, _ = open_database()
    count = database.write(outbox.replay, None if all_dead else list(row_ids or []))
    typer.echo(f"{count} notification(s) queued again")


@outbox_app.command("secret")
def outbox_secret(subscription_id: str) -> None:
    """The HMAC secret a Subscription's deliveries are signed with (for its receiver)."""
    from fhir_gateway.store import outbox

    database, _ = open_database()
    secret = database.read(outbox.secret_of, subscription_id)
    if secret is None:
        raise typer.BadParameter(f"Subscription/{subscription_id} has no secret (is it stored?)")
    typer.echo(secret)


@referral_app.command("times")
def referral_times(
    task_id: Annotated[
        str, typer.Argument(metavar="TASK_ID", help="The referral Task: ID or Task/ID")
    ],
) -> None:
    """How long a referral Task spent in each state."""
    from fhir_gateway.fhir.references import Reference
    from fhir_gateway.workflow import durations, time_in_states

    bare = Reference.id_of(task_id, "Task") if "/" in task_id else task_id
    if not bare:
        raise typer.BadParameter(
            f"{task_id!r} is not a Task: give ID or Task/ID", param_hint="TASK_ID"
        )
    task_id = bare
    database, _ = open_database()
    spans = database.read(time_in_states, task_id)
    if not spans:
        raise typer.BadParameter(f"Task/{task_id} has no history")
    for span in spans:
        end = span.end.isoformat() if span.end else "now"
        typer.echo(f"v{span.version:<4} {span.status:<14} {span.start.isoformat()} → {end}")
    for status, spent in durations(spans).items():
        typer.echo(f"{status:<14} {spent}")
