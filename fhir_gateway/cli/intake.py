"""`fhir-gateway mllp` and `fhir-gateway inbox list|show|replay`: thin, they call the intake."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Annotated

import orjson
import typer

from fhir_gateway.cli.database import fail, open_database, upgrade_schema

__all__ = ["inbox_app", "mllp_command", "enable_mllp_in_serve"]

inbox_app = typer.Typer(no_args_is_help=True, help="The durable inbox of received messages")


def _intake():  # type: ignore[no-untyped-def]
    from fhir_gateway.services.ingest import Intake

    database, settings = open_database(rules=True)  # plans, referral rules, notifications, …
    return Intake(database, settings), settings


def mllp_command(
    host: Annotated[
        str | None, typer.Option(help="Interface (default: FHIR_GATEWAY_MLLP_HOST)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="TCP port (default: FHIR_GATEWAY_MLLP_PORT, 2575)")
    ] = None,
    migrate: Annotated[bool, typer.Option(help="Bring the schema up to date first")] = True,
    health_port: Annotated[
        int | None,
        typer.Option(
            "--health-port", help="Serve /health/live, /health/ready and /metrics on this port"
        ),
    ] = None,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Listener processes sharing the port, one core each (PostgreSQL only; "
            "--health-port is served by the first)",
        ),
    ] = 1,
    seed: Annotated[bool, typer.Option(hidden=True)] = True,  # off in a group's children
) -> None:
    """Run the MLLP listener alone (HL7 v2 over TCP, TLS when configured)."""
    from fhir_gateway.cli.demo import seed_at_start
    from fhir_gateway.observability import observe_process
    from fhir_gateway.observability.heap import freeze_start_up_heap
    from fhir_gateway.workers.mllp import start_listener

    if processes > 1:
        raise typer.Exit(_mllp_group(processes, host, port, health_port, migrate=migrate))
    intake, settings = _intake()
    stop_health = observe_process(intake.db, settings, health_port=health_port)
    if migrate:
        upgrade_schema(settings.database_url)
    if seed:
        seed_at_start(settings)  # as `serve` does: without templates a discharge makes no plan

    async def run() -> None:
        listener = await start_listener(intake, settings, host=host, port=port)
        freeze_start_up_heap(settings.gc_freeze_at_start)
        typer.echo(f"MLLP listening on {listener.config.host}:{listener.port}", err=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await listener.close()

    try:
        asyncio.run(run())
    finally:
        stop_health()


def _mllp_group(
    processes: int, host: str | None, port: int | None, health_port: int | None, *, migrate: bool
) -> int:
    """Migrate and seed once, then run ``processes`` listeners on one port."""
    from fhir_gateway.cli.demo import seed_at_start
    from fhir_gateway.cli.process_group import run_group
    from fhir_gateway.settings import get_settings

    settings = get_settings()
    if not settings.database_url.startswith("postgresql"):
        fail("--processes above 1 needs PostgreSQL (FHIR_GATEWAY_DATABASE_URL)")
    port = settings.mllp_port if port is None else port
    if port == 0:
        fail("--processes above 1 needs a fixed --port: the listeners share it")
    if migrate:
        upgrade_schema(settings.database_url)
    seed_at_start(settings)
    child = ["-c", "from fhir_gateway.cli import main; main()", "mllp", "--no-migrate"]
    child += ["--no-seed", "--port", str(port), *(["--host", host] if host else [])]
    health = [] if health_port is None else ["--health-port", str(health_port)]
    return run_group([child + (health if i == 0 else []) for i in range(processes)])


def enable_mllp_in_serve(port: int | None) -> None:
    """Tell the app factory (re-read by uvicorn) to run the MLLP listener too."""
    from fhir_gateway.settings import get_settings

    os.environ["FHIR_GATEWAY_MLLP_ENABLED"] = "true"
    if port is not None:
        os.environ["FHIR_GATEWAY_MLLP_PORT"] = str(port)
    get_settings.cache_clear()


@inbox_app.command("list")
def inbox_list(
    status: Annotated[
        str | None, typer.Option(help="received | processed | duplicate | failed")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 50,
) -> None:
    """List messages (newest first)."""
    from fhir_gateway.store.inbox_tables import STATUSES

    if status is not None and status not in STATUSES:
        raise typer.BadParameter(
            f"{status!r} is not one of {', '.join(STATUSES)}", param_hint="--status"
        )
    intake, _ = _intake()
    rows = intake.listing(status=status, limit=limit)
    if rows:
        typer.echo(
            f"{'ID':>8}  {'STATUS':<9} {'ANSWER':<11} {'CHAN':<5} {'EVENT':<24} SENDER CONTROL-ID  REASON"
        )
    for row in rows:
        reason = (row.error or {}).get("reason", "")
        typer.echo(
            f"{row.id:>8}  {row.status:<9} {row.answer_code or '-':<11} {row.channel:<5} "
            f"{row.event or '-':<24} {row.sender or '-'} {row.control_id or '-'}  {reason}"
        )
    if not rows:
        typer.echo("no messages", err=True)


@inbox_app.command("show")
def inbox_show(message_id: int) -> None:
    """One message: its record, the raw text and the answer sent."""
    from fhir_gateway.errors import NotFound

    intake, _ = _intake()
    try:
        row = intake.show(message_id)
    except NotFound as exc:
        fail(exc.message)
    detail = {**row.summary(), "warnings": row.warnings}
    typer.echo(orjson.dumps(detail, option=orjson.OPT_INDENT_2).decode())
    typer.echo("--- raw")
    typer.echo(row.raw.decode("utf-8", "replace").replace("\r", "\n"))
    typer.echo("--- answer")
    typer.echo((row.answer or b"").decode("utf-8", "replace").replace("\r", "\n"))


@inbox_app.command("replay")
def inbox_replay(
    message_id: Annotated[int | None, typer.Argument(help="The message to apply again")] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Replay every failed message, oldest first")
    ] = False,
) -> None:
    """Convert and apply stored messages again (after a mapping fix); idempotent, and never
    overwriting newer data."""
    if (message_id is None) == (not failed):
        raise typer.BadParameter("give a message ID or --failed (not both)")
    from fhir_gateway.errors import NotFound

    intake, _ = _intake()
    try:
        answers = _replay_failed(intake) if failed else [intake.replay(message_id)]  # type: ignore[arg-type]
    except NotFound as exc:
        fail(exc.message)
    for answer in answers:
        typer.echo(f"{answer.message_id:>8}  {answer.status:<9} {answer.code}")
    if failed:
        still = sum(a.status == "failed" for a in answers)
        typer.echo(
            f"replayed {len(answers)} failed message(s): {len(answers) - still} applied, {still} still failed",
            err=True,
        )
    if any(a.status == "failed" for a in answers):
        raise typer.Exit(1)


def _replay_failed(intake):  # type: ignore[no-untyped-def]
    """Every failed message, oldest first, with a progress bar (as ``Intake.replay_failed``)."""
    from fhir_gateway.cli.progress import steps
    from fhir_gateway.store import inbox

    ids = intake.db.read(inbox.ids_with_status, "failed")
    answers = []
    with steps(f"Replaying {len(ids)} failed messages", total=len(ids)) as bar:
        for message_id in ids:
            answers.append(intake.replay(message_id))
            bar.advance()
    return answers
