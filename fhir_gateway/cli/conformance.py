"""`fhir-gateway conformance --base-url URL`: run the conformance kit against any FHIR server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["conformance_command"]


def conformance_command(
    base_url: Annotated[
        str,
        typer.Option("--base-url", help="The FHIR base URL to check, e.g. http://127.0.0.1:8080"),
    ],
    token: Annotated[
        str | None,
        typer.Option(
            "--token", envvar="FHIR_CONFORMANCE_TOKEN", help="Bearer token sent with every request."
        ),
    ] = None,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write the results as JUnit XML here.")
    ] = None,
    select: Annotated[
        list[str] | None,
        typer.Option(
            "--select", "-k", help="Only these checks (glob on ids, or a category). Repeatable."
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Leave these checks out. Repeatable.")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="One line per check, passes included.")
    ] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Checks run at a time.")] = 4,
    race: Annotated[
        int, typer.Option("--race", min=2, help="Concurrent conditional creates in the race check.")
    ] = 20,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for each answer.")
    ] = 30.0,
) -> None:
    """Check a FHIR R4 server: CRUD, versions, conditional and concurrent writes, transactions,
    search, history, PATCH, errors, and that its CapabilityStatement tells the truth.

    Exits 0 when every required check passes, 1 otherwise. Writes only uniquely named data and
    deletes it afterwards, so it can run against a shared server."""
    from conformance import run_kit

    report = run_kit(
        base_url,
        token=token,
        select=select,
        exclude=exclude,
        jobs=jobs,
        race_size=race,
        timeout=timeout,
    )
    typer.echo(report.table(verbose=verbose, width=_width()))
    details = report.details()
    if details:
        typer.echo("\n" + details, err=True)
    if junit is not None:
        report.write_junit(junit)
        typer.echo(f"JUnit XML: {junit}")
    raise typer.Exit(0 if report.ok else 1)


def _width() -> int:
    import shutil

    return max(80, shutil.get_terminal_size((120, 24)).columns)
