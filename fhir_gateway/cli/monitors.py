"""`fhir-gateway monitors` (list overdue referrals and active alerts), `fhir-gateway monitors run`
(the scheduled monitors: once, or as a loop beside the outbox worker) and `fhir-gateway report fuh`
(the 7- and 30-day follow-up measure for a period). Thin: they call fhir_gateway.monitors."""

from __future__ import annotations

import signal
import threading
from datetime import date
from typing import Annotated, Any

import orjson
import typer

from fhir_gateway.cli.database import open_database

__all__ = ["monitors_app", "report_app"]

monitors_app = typer.Typer(
    invoke_without_command=True, help="Case-manager monitors: overdue referrals, alerts"
)
report_app = typer.Typer(no_args_is_help=True, help="Reports (FHIR MeasureReports)")


@monitors_app.callback()
def monitors_list(ctx: typer.Context) -> None:
    """Overdue referrals (escalated first) and the monitors' active alerts."""
    if ctx.invoked_subcommand is not None:
        return
    from fhir_gateway import monitors

    database, _ = open_database(rules=True)
    rows = database.read(monitors.overdue_referrals)
    typer.echo(f"overdue referrals: {len(rows)}")
    for row in rows:
        mark = "ESCALATED" if row.escalated else "overdue  "
        typer.echo(
            f"  {mark} {row.task:<44} {row.status:<11} due {row.deadline or '-':<26} "
            f"{row.owner or 'unassigned':<36} {row.patient or ''}  {row.title}"
        )
    flags = database.read(monitors.alerts)
    typer.echo(f"active alerts: {len(flags)}")
    for doc in flags:
        typer.echo(
            f"  {doc['period']['start'][:16]}  {doc['subject']['reference']:<44} {doc['code'].get('text', '')}"
        )


@monitors_app.command("run")
def monitors_run(
    once: Annotated[
        bool, typer.Option("--once", help="Run every monitor now, print the summary and exit")
    ] = False,
    migrate: Annotated[bool, typer.Option(help="Bring the schema up to date first")] = True,
) -> None:
    """Run the scheduled monitors. Without --once this LOOPS until stopped (Ctrl-C, SIGTERM),
    running them every FHIR_GATEWAY_MONITOR_INTERVAL seconds (one process per turn, however many
    run); with --once it runs them now, prints the summary and exits."""
    import logging

    from fhir_gateway import monitors

    database, settings = open_database(rules=True, migrate=migrate)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if once:
            typer.echo(orjson.dumps(monitors.run_all(database, settings).as_dict()).decode())
            return
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        monitors.run_forever(database, settings, stop)
    finally:
        database.dispose()


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{name} must be a date (YYYY-MM-DD)") from exc


@report_app.command("fuh")
def report_fuh(
    start: Annotated[
        str, typer.Option("--from", help="First discharge day (YYYY-MM-DD, facility-local)")
    ],
    end: Annotated[
        str, typer.Option("--to", help="Last discharge day (YYYY-MM-DD, facility-local)")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary MeasureReport")
    ] = False,
    store: Annotated[
        bool, typer.Option("--store", help="Store the summary and individual MeasureReports")
    ] = False,
) -> None:
    """Follow-up after hospitalisation for mental illness: 7- and 30-day rates for the discharges
    of a period, with each discharge's outcome."""
    from fhir_gateway import monitors

    first, last = _day(start, "--from"), _day(end, "--to")
    if last < first:
        raise typer.BadParameter("--to is before --from")
    database, settings = open_database(rules=True)
    if store:
        refs = database.write(monitors.store_fuh_reports, settings, first, last)
        typer.echo(f"stored {', '.join(refs)}", err=True)
    outcomes = database.read(monitors.fuh_outcomes, settings, first, last)
    if as_json:
        report = database.read(
            lambda _: monitors.summary_report(outcomes, first, last, settings.case_manager)
        )  # the report's id is keyed with the installation secret: derived inside a session
        typer.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return
    _print_table(outcomes, monitors.rates(outcomes), first, last)


def _print_table(
    outcomes: list[Any], rates: dict[str, dict[str, int]], first: date, last: date
) -> None:
    typer.echo(f"FUH {first} … {last}: {len(outcomes)} psychiatric discharge(s)")
    for code, counts in rates.items():
        eligible = counts["denominator"] - counts["denominator-exclusion"]
        rate = f"{100 * counts['numerator'] / eligible:.1f} %" if eligible else "n/a"
        typer.echo(
            f"  {code:<7} {counts['numerator']}/{eligible} eligible ({counts['denominator-exclusion']} excluded): {rate}"
        )
    for o in outcomes:
        seven, thirty = o.within(7), o.within(30)
        status = (
            o.exclusion
            and f"excluded ({o.exclusion})"
            or (
                f"7d {'yes (day ' + str(seven.day) + ')' if seven else 'no'}, "
                f"30d {'yes (day ' + str(thirty.day) + ')' if thirty else 'no'}"
            )
        )
        typer.echo(f"  {o.local_date}  {o.discharge.patient:<44} {o.discharge.ref:<46} {status}")
