"""``fhir-gateway report disclosures PATIENT``: the accounting of a patient's 42 CFR Part 2
disclosures (2.24, 2.25) — who received what, when, under which consent — for the last three
years, or since ``--since``; ``--json`` prints the Bundle of AuditEvents the API's
``Patient/{id}/$disclosures`` answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import typer

from fhir_gateway.cli.database import open_database

__all__ = ["disclosures_command"]


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter("--since must be a date or an instant") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _line(event: dict[str, Any]) -> str:
    recipient = next(
        (a["who"].get("reference") for a in event.get("agent", []) if a.get("type")), "?"
    )
    entities = [(e.get("what") or {}).get("reference", "") for e in event.get("entity", [])]
    consent = next((e for e in entities if e.startswith("Consent/")), "?")
    data = [e for e in entities if not e.startswith(("Patient/", "Consent/"))]
    purposes = ",".join(
        c.get("code", "") for p in event.get("purposeOfEvent", []) for c in p.get("coding", [])
    )
    return (
        f"{event.get('recorded')}  to {recipient}  under {consent} ({purposes}; "
        f"{event.get('outcomeDesc', '')}): {', '.join(data)}"
    )


def disclosures_command(
    patient: Annotated[str, typer.Argument(help="The patient: Patient/ID or ID")],
    since: Annotated[
        str | None, typer.Option(help="From this date or instant (default: three years ago)")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the Bundle of AuditEvents")
    ] = False,
) -> None:
    """The accounting of a patient's 42 CFR Part 2 disclosures (42 CFR 2.24, 2.25)."""
    from fhir_gateway.security import accounting_bundle

    reference = patient if patient.startswith("Patient/") else f"Patient/{patient}"
    database, _ = open_database()
    try:
        bundle = database.read(accounting_bundle, reference, since=_since(since))
    finally:
        database.dispose()
    if as_json:
        typer.echo(orjson.dumps(bundle, option=orjson.OPT_INDENT_2).decode())
        return
    events = [e["resource"] for e in bundle["entry"]]
    typer.echo(f"{len(events)} disclosure(s) of {reference}'s 42 CFR Part 2 records")
    for event in events:
        typer.echo(f"  {_line(event)}")
