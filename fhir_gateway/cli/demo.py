"""`fhir-gateway demo`: a sample psychiatric discharge (HL7 v2 ADT^A03) through the real intake,
and the care plan it made, as a table. Idempotent: a second run finds the same message and plan."""

from __future__ import annotations

from typing import Annotated, Any

import typer

__all__ = ["demo_command", "seed_at_start", "SAMPLE_A03"]

SAMPLE_A03 = "\r".join(
    [
        "MSH|^~\\&|EPIC|STMARYS^1.2.3^ISO|GW|GW|20250310143000||ADT^A03^ADT_A03|DEMO-0001|P|2.5.1",
        "EVN|A03|20250310143000",
        "PID|1||DEMO-MRN-1^^^STMARYS&1.2.3&ISO^MR||Rivera^Alex^J||19900412|X|||HOMELESS^^Springfield^IL^62701^USA",
        "NK1|1|Rivera^Maria|MTH^Mother^HL70063||^PRN^PH^^^217^5550199",
        "PV1|1|I|PSY^204^B^STMARYS||||4411^Okafor^Ngozi^^^Dr^MD|||PSY|||||||||DEMO-V1^^^STMARYS^VN"
        + "|" * 17
        + "01"
        + "|" * 8
        + "20250303101500|20250310140000",
        "DG1|1||F32.2^Major depressive disorder, single episode, severe^I10|||F|||||||||1",
        "DG1|2||F10.20^Alcohol dependence, uncomplicated^I10|||F",
        "DG1|3||Z56.0^Unemployment, unspecified^I10|||F",
    ]
)


def seed_at_start(settings: Any) -> int:
    """Store the shipped templates and partner directory (``careplan_seed``); returns changes."""
    if not settings.careplan_seed:
        return 0
    from fhir_gateway import careplans
    from fhir_gateway.store.db import Database

    database = Database(settings.database_url)
    try:
        return database.write(careplans.seed, settings)
    finally:
        database.dispose()


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    line = "  ".join("-" * w for w in widths)
    fmt = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False))  # noqa: E731
    return "\n".join([fmt(headers), line, *(fmt(r) for r in rows)])


def _report(session: Any, encounter: str) -> str:
    from fhir_gateway.careplans import plans_of_encounter, tasks_for
    from fhir_gateway.services.lookup import read

    plans = [p for p in plans_of_encounter(session, encounter) if p["status"] != "revoked"]
    if not plans:
        return "No care plan: no template applies to this discharge."
    plan = plans[0]
    patient = read(session, plan["subject"]["reference"]) or {}
    name = " ".join(
        [
            *patient.get("name", [{}])[0].get("given", []),
            patient.get("name", [{}])[0].get("family", ""),
        ]
    )
    out = [
        f"Care plan CarePlan/{plan['id']} ({plan['status']}) for {name}, discharged {plan['period']['start']}",
        "",
    ]
    goals = [read(session, g["reference"]) or {} for g in plan.get("goal", [])]
    out.append(
        _table(
            [
                [g["description"]["text"], g["target"][0]["dueDate"], g["lifecycleStatus"]]
                for g in goals
            ],
            ["Goal", "Target date", "Status"],
        )
    )
    rows = []
    for activity in plan.get("activity", []):
        request = read(session, activity["reference"]["reference"]) or {}
        for task in tasks_for(session, activity["reference"]["reference"]):
            labels = {s["code"] for s in request.get("meta", {}).get("security", [])}
            rows.append(
                [
                    request["code"]["text"],
                    task.get("owner", {}).get("display", "(unassigned)"),
                    task["restriction"]["period"]["end"],
                    task["status"],
                    "42 CFR Part 2" if "42CFRPart2" in labels else "",
                ]
            )
    out += ["", _table(rows, ["Referral", "Partner", "Deadline", "Task", "Privacy"])]
    return "\n".join(out)


def demo_command(
    mode: Annotated[
        str, typer.Option(help="auto: referrals go out at once; review: a case manager approves")
    ] = "",
) -> None:
    """Send a sample psychiatric discharge through the intake and print the care plan it made."""
    from fhir_gateway import careplans
    from fhir_gateway.app import install_rules
    from fhir_gateway.cli.database import upgrade_schema
    from fhir_gateway.services.ingest import Intake
    from fhir_gateway.settings import get_settings
    from fhir_gateway.store.db import Database

    base = get_settings()
    settings = base.model_copy(
        update={
            "sender_zones": {"STMARYS": "America/Chicago", **base.sender_zones},
            **({"careplan_mode": mode} if mode else {}),
        }
    )
    upgrade_schema(settings.database_url)
    database = Database(settings.database_url)
    database.write(careplans.seed, settings)
    install_rules(settings)
    answer = Intake(database, settings).receive_hl7(SAMPLE_A03.encode(), channel="demo")
    typer.echo(f"ADT^A03 DEMO-0001 → {answer.code} ({answer.status})\n")
    encounters = database.read(_demo_encounter)
    typer.echo(
        database.read(_report, encounters) if encounters else "The discharge was not stored."
    )
    database.dispose()


def _demo_encounter(session: Any) -> str | None:
    from fhir_gateway.context import SYSTEM
    from fhir_gateway.store.search import match_ids

    ids = match_ids(session, "Encounter", [("identifier", "DEMO-V1")], caller=SYSTEM)
    return f"Encounter/{ids[0]}" if ids else None
