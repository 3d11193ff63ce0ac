"""`fhir-gateway demo`: sample psychiatric discharges, dated today, from the two demo hospitals
(Springfield, IL and Bengaluru) sent through a running gateway's API (``POST /hl7v2``), and the
routed plan each made, read back through the same API. Every run sends new discharges (fresh
control ids and patients). ``--local`` runs the gateway in this process on the configured
database instead, and says so."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import httpx
import typer

from fhir_gateway.cli.demo_samples import SITES, DemoDischarge, DemoSite, discharge

__all__ = ["demo_command", "seed_at_start", "SAMPLE_A03"]

# A fixed Springfield discharge (bench/bench_intake.py builds its load from it).
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

HL7_MEDIA_TYPE = "x-application/hl7-v2+er7"
UNASSIGNED = "unassigned"  # the monitors' flag code of a referral no partner took
_FLAG_DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"


class DemoError(Exception):
    """Something the user must fix (no server, no token, a refused message): said plainly."""


def seed_at_start(settings: Any) -> int:
    """Store the shipped templates, partner directory and instruments (``careplan_seed``);
    returns changes."""
    if not settings.careplan_seed:
        return 0
    from fhir_gateway import assessments, careplans, contacts, relapse
    from fhir_gateway.store.db import Database

    database = Database(settings.database_url)
    try:
        changed = database.write(careplans.seed, settings)
        changed += database.write(assessments.seed, settings)  # the standard instruments
        changed += database.write(relapse.seed)  # relapse-prevention plan and report forms
        return changed + database.write(contacts.seed)  # the caring-contact schedule and texts
    finally:
        database.dispose()


# -- reading the plan back through the API ------------------------------------------------------


@dataclass(slots=True)
class RoutedReferral:
    service: str
    partner: str | None
    deadline: str | None  # Task.restriction.period.end as sent
    status: str
    reason: str = ""  # why it has no owner (the unassigned Flag's text)
    labels: frozenset[str] = frozenset()


@dataclass(slots=True)
class RoutedPlan:
    careplan: str
    status: str
    patient: str
    referrals: list[RoutedReferral] = field(default_factory=list)
    measures: int = 0  # symptom-measure Tasks of the plan (PHQ-9, GAD-7 due after discharge)


def _bundle(client: httpx.Client, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    answer = client.get(path, params={**params, "_count": "200"})
    _check(answer, f"GET {path}")
    return [e["resource"] for e in answer.json().get("entry", []) if "resource" in e]


def _check(answer: httpx.Response, what: str) -> None:
    if answer.status_code == 401:
        raise DemoError(f"{what}: the server wants an access token (401). {_TOKEN_HELP}")
    if answer.status_code == 403:
        raise DemoError(
            f"{what}: refused (403): the demo's client needs the admin role. {_TOKEN_HELP}"
        )
    if answer.status_code >= 400:
        raise DemoError(f"{what} answered {answer.status_code}: {answer.text[:500]}")


def _unassigned_reasons(flags: list[dict[str, Any]]) -> dict[str, str]:
    """Task reference → the reason in its active ``unassigned`` Flag."""
    out: dict[str, str] = {}
    for flag in flags:
        codes = {c.get("code") for c in (flag.get("code") or {}).get("coding", [])}
        if flag.get("status") != "active" or UNASSIGNED not in codes:
            continue
        for ext in flag.get("extension", []):
            ref = (ext.get("valueReference") or {}).get("reference", "")
            if ext.get("url") == _FLAG_DETAIL and ref.startswith("Task/"):
                out[ref] = (flag.get("code") or {}).get("text") or "no partner found"
    return out


def _patient_name(patient: dict[str, Any]) -> str:
    name = (patient.get("name") or [{}])[0]
    return " ".join([*name.get("given", []), name.get("family", "")]).strip() or patient.get(
        "id", "?"
    )


def read_plan(client: httpx.Client, sent: DemoDischarge) -> RoutedPlan | None:
    """The plan the discharge made, its referrals and their owners, through the FHIR API."""
    encounters = _bundle(client, "/Encounter", {"identifier": sent.visit})
    if not encounters:
        raise DemoError(f"the server stored no Encounter {sent.visit}")
    encounter = f"Encounter/{encounters[0]['id']}"
    plans = [
        p
        for p in _bundle(client, "/CarePlan", {"encounter": encounter})
        if p.get("status") != "revoked"
    ]
    if not plans:
        return None
    plan, patient_ref = plans[0], plans[0]["subject"]["reference"]
    patient = client.get(f"/{patient_ref}")
    _check(patient, f"GET /{patient_ref}")
    requests = {
        f"ServiceRequest/{r['id']}": r
        for r in _bundle(client, "/ServiceRequest", {"encounter": encounter})
    }
    reasons = _unassigned_reasons(_bundle(client, "/Flag", {"patient": patient_ref}))
    routed = RoutedPlan(f"CarePlan/{plan['id']}", plan["status"], _patient_name(patient.json()))
    for task in _bundle(client, "/Task", {"encounter": encounter}):
        if not (task.get("focus") or {}).get("reference", "").startswith("ServiceRequest/"):
            routed.measures += 1  # a questionnaire to ask the patient, not a referral
            continue
        request = requests.get(task["focus"]["reference"], {})
        routed.referrals.append(
            RoutedReferral(
                service=(request.get("code") or {}).get("text") or task.get("description", "?"),
                partner=(task.get("owner") or {}).get("display")
                or (task.get("owner") or {}).get("reference"),
                deadline=((task.get("restriction") or {}).get("period") or {}).get("end"),
                status=task["status"],
                reason=reasons.get(f"Task/{task['id']}", ""),
                labels=frozenset(
                    s.get("code", "") for s in (task.get("meta") or {}).get("security", [])
                ),
            )
        )
    routed.referrals.sort(key=lambda r: (r.deadline or "", r.service))
    return routed


def approve(client: httpx.Client, careplan: str) -> None:
    """What a case manager does in review mode: the draft plan becomes active."""
    patch = [{"op": "replace", "path": "/status", "value": "active"}]
    answer = client.patch(
        f"/{careplan}", json=patch, headers={"Content-Type": "application/json-patch+json"}
    )
    _check(answer, f"PATCH /{careplan}")


# -- printing -------------------------------------------------------------------------------------


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in lines
    )


def _local(value: str | None, zone: ZoneInfo) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def render_plan(plan: RoutedPlan, site: DemoSite) -> str:
    rows = []
    for r in plan.referrals:
        partner = r.partner or f"(unassigned: {r.reason or 'no reason recorded'})"
        privacy = "42 CFR Part 2" if "42CFRPart2" in r.labels else ""
        rows.append([r.service, partner, _local(r.deadline, site.zone), r.status, privacy])
    table = _table(rows, ["Referral", "Partner", f"Deadline ({site.zone.key})", "Task", "Privacy"])
    measures = (
        [f"  and {plan.measures} symptom measures (PHQ-9, GAD-7) due after the discharge"]
        if plan.measures
        else []
    )
    return "\n".join(
        [
            f"  {plan.careplan} ({plan.status}) for {plan.patient}",
            *("  " + t for t in table.splitlines()),
            *measures,
        ]
    )


def _review_note(plans: list[tuple[DemoSite, RoutedPlan]], base_url: str | None) -> str:
    drafts = [p.careplan for _, p in plans if p.status == "draft"]
    if not drafts:
        return ""
    patch = '\'[{"op": "replace", "path": "/status", "value": "active"}]\''
    if base_url is None:  # --local: nothing listens
        how = [
            f"  with `fhir-gateway serve` running on this database: PATCH /{ref} with {patch}"
            for ref in drafts
        ]
    else:
        how = [
            f"  curl -X PATCH -H 'Content-Type: application/json-patch+json' -d {patch} {base_url}/{ref}"
            for ref in drafts
        ]
    lines = [
        "The server runs in review mode: these plans wait for a case manager's approval, and no",
        "referral goes out before it. Approve one by making its CarePlan active:",
        *how,
        '(add -H "Authorization: Bearer …" when tokens are on), or run the demo with --approve.',
    ]
    return "\n".join(lines)


# -- the command ----------------------------------------------------------------------------------

_TOKEN_HELP = (
    "Give the demo an admin client's token (--token), or its id and key (--client-id, --key):\n"
    "  fhir-gateway clients keygen demo-admin\n"
    "  fhir-gateway clients add --client-id demo-admin --jwks demo-admin.jwks.json --role admin "
    "--scope 'system/*.cruds'\n"
    "  fhir-gateway demo --client-id demo-admin --key demo-admin.private.jwk.json\n"
    "or run the server without tokens on loopback: fhir-gateway serve --insecure-dev"
)


def _reachable(client: httpx.Client, base_url: str) -> None:
    try:
        client.get("/metadata")
    except httpx.HTTPError as exc:
        raise DemoError(
            f"No FHIR gateway answers at {base_url} ({exc.__class__.__name__}).\n"
            "Start one in another terminal:  fhir-gateway serve --insecure-dev\n"
            "or pass --base-url, or run `fhir-gateway demo --local` to write to the local database instead."
        ) from exc


def _send(client: httpx.Client, sent: DemoDischarge) -> str:
    answer = client.post("/hl7v2", content=sent.message, headers={"Content-Type": HL7_MEDIA_TYPE})
    if answer.status_code in (401, 403):
        _check(answer, "POST /hl7v2")
    segments = {s.split("|", 1)[0]: s.split("|") for s in answer.text.split("\r") if s}
    msa = segments.get("MSA", [])
    if len(msa) < 2:
        raise DemoError(
            f"POST /hl7v2 answered {answer.status_code} without an ACK: {answer.text[:300]}"
        )
    if msa[1] not in ("AA", "CA"):
        err = "|".join(segments.get("ERR", []))
        raise DemoError(f"the gateway refused {sent.control_id}: {msa[1]} {err}")
    return msa[1]


def run_demo(
    client: httpx.Client,
    base_url: str | None,
    sites: tuple[DemoSite, ...],
    *,
    approve_plans: bool,
    now: datetime,
) -> list[tuple[DemoSite, RoutedPlan]]:
    made: list[tuple[DemoSite, RoutedPlan]] = []
    for site in sites:
        sent = discharge(site, now)
        code = _send(client, sent)
        typer.echo(
            f"\n{site.label}: ADT^A03 {sent.control_id} from {site.application}|{site.facility} "
            f"(country {site.country}), patient {sent.mrn}, discharged "
            f"{sent.discharged.strftime('%Y-%m-%d %H:%M %Z')} → {code}"
        )
        plan = read_plan(client, sent)
        if plan is None:
            typer.echo("  No care plan: no template applies to this discharge.")
            continue
        if approve_plans and plan.status == "draft":
            approve(client, plan.careplan)
            typer.echo(f"  approved {plan.careplan} (as a case manager would)")
            plan = read_plan(client, sent) or plan
        typer.echo(render_plan(plan, site))
        made.append((site, plan))
    note = _review_note(made, base_url)
    if note:
        typer.echo("\n" + note)
    return made


def _token(token: str | None, client_id: str | None, key: Path | None, base_url: str) -> str | None:
    if token or not client_id:
        return token
    if key is None:
        raise DemoError("--client-id needs --key (the client's private JWK from `clients keygen`)")
    from fhir_gateway.cli.clients import TokenRefused, fetch_token

    try:
        return fetch_token(base_url, client_id, key)
    except TokenRefused as exc:
        raise DemoError(str(exc)) from exc


def _local_app() -> tuple[Any, str]:
    """The gateway in this process, on FHIR_GATEWAY_DATABASE_URL, tokens off (nothing listens)."""
    from fhir_gateway.app import create_app
    from fhir_gateway.cli import _safe_url
    from fhir_gateway.cli.database import upgrade_schema
    from fhir_gateway.settings import get_settings

    settings = get_settings().model_copy(update={"auth_enabled": False, "log_level": "WARNING"})
    upgrade_schema(settings.database_url)
    seed_at_start(settings)
    return create_app(settings), _safe_url(settings.database_url)


def demo_command(
    base_url: Annotated[
        str, typer.Option(help="The running gateway's base URL")
    ] = "http://127.0.0.1:8080",
    token: Annotated[
        str | None, typer.Option(help="An access token (admin role) when tokens are on")
    ] = None,
    client_id: Annotated[
        str | None, typer.Option(help="Get a token as this registered admin client")
    ] = None,
    key: Annotated[Path | None, typer.Option(help="The private JWK of --client-id")] = None,
    site: Annotated[
        list[str] | None, typer.Option(help="springfield | bengaluru (default: both)")
    ] = None,
    approve_plans: Annotated[
        bool, typer.Option("--approve", help="Approve the draft plans, as a case manager")
    ] = False,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="No server: run the gateway in this process on "
            "FHIR_GATEWAY_DATABASE_URL (writes to that database)",
        ),
    ] = False,
) -> None:
    """Send psychiatric discharges dated today from the two demo hospitals through the gateway's
    API (POST /hl7v2) and print each routed plan: referrals, partners, deadlines."""
    from fhir_gateway import clock

    wanted = tuple(s for s in SITES if not site or s.key in site)
    if not wanted:
        raise typer.BadParameter(f"--site takes {' or '.join(s.key for s in SITES)}")
    try:
        if local:
            with warnings.catch_warnings():  # starlette's notice about its own httpx use
                warnings.simplefilter("ignore")
                from starlette.testclient import TestClient

            app, where = _local_app()
            typer.echo(
                f"--local: no server; the gateway runs in this process and writes to {where}"
            )
            with TestClient(app, base_url="http://local") as client:
                run_demo(client, None, wanted, approve_plans=approve_plans, now=clock.now())
            return
        base_url = base_url.rstrip("/")
        headers = {"Accept": "application/fhir+json"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
            _reachable(client, base_url)
            bearer = _token(token, client_id, key, base_url)
            if bearer:
                client.headers["Authorization"] = f"Bearer {bearer}"
            typer.echo(f"Sending to the gateway at {base_url} (POST /hl7v2)")
            run_demo(client, base_url, wanted, approve_plans=approve_plans, now=clock.now())
    except DemoError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
