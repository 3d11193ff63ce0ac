"""`fhir-gateway clients add|list|remove|keygen`: register SMART backend-services clients."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fhir_gateway.cli.database import command_database, fail

__all__ = ["clients_app", "fetch_token", "TokenRefused"]

clients_app = typer.Typer(
    no_args_is_help=True, help="SMART backend-services clients (who may call the API)"
)


def _split(scopes: list[str]) -> list[str]:
    return [s for item in scopes for s in item.split() if s]


@clients_app.command("add")
def add(
    role: Annotated[str, typer.Option(help="hospital | ehr | partner | case-manager | admin")],
    scope: Annotated[
        list[str],
        typer.Option(help="SMART scope, e.g. system/Task.rus (repeat, or space-separated)"),
    ],
    jwks: Annotated[Path | None, typer.Option(help="File with the client's public JWKS")] = None,
    jwks_url: Annotated[
        str | None, typer.Option(help="URL where the client publishes its JWKS")
    ] = None,
    organization: Annotated[
        str | None, typer.Option(help="Organization/ID the client acts for")
    ] = None,
    client_id: Annotated[str | None, typer.Option(help="Client id (default: a new UUID)")] = None,
    sender: Annotated[
        list[str] | None, typer.Option(help="HL7 sender APP|FACILITY a hospital speaks for")
    ] = None,
) -> None:
    """Register a client: its public keys, role, organization and scopes."""
    from fhir_gateway.security import add_client

    try:
        keys = json.loads(jwks.read_text()) if jwks is not None else None
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"cannot read the JWKS file: {exc}") from exc
    with command_database() as (database, _), database.session() as session:
        client = add_client(
            session,
            role=role,
            scopes=_split(scope),
            organization=organization,
            jwks=keys,
            jwks_url=jwks_url,
            client_id=client_id,
            senders=sender or [],
        )
    typer.echo(f"client_id: {client.client_id}")
    typer.echo(
        f"  role {client.role}, organization {client.organization or '-'}, scopes {' '.join(client.scopes)}"
    )


@clients_app.command("list")
def list_command() -> None:
    """The registered clients."""
    from fhir_gateway.security import list_clients

    with command_database() as (database, _), database.session(readonly=True) as session:
        clients = list_clients(session)
    for client in clients:
        s = client.summary()
        typer.echo(
            f"{s['client_id']}\t{s['role']}\t{s['organization'] or '-'}\t{s['scopes']}\t{s['keys']}"
        )


@clients_app.command("remove")
def remove(client_id: Annotated[str, typer.Argument(help="The client to remove")]) -> None:
    """Remove a client: it gets no new token (tokens already issued lapse within five minutes)."""
    from fhir_gateway.security import remove_client

    with command_database() as (database, _), database.session() as session:
        removed = remove_client(session, client_id)
    if not removed:
        fail(f"no client {client_id}")
    typer.echo(f"removed {client_id}")


@clients_app.command("keygen")
def keygen(
    out: Annotated[
        Path, typer.Argument(help="Prefix: writes PREFIX.private.jwk.json and PREFIX.jwks.json")
    ],
    alg: Annotated[str, typer.Option(help="ES384 or RS384")] = "ES384",
) -> None:
    """Make a key pair for a client: keep the private JWK, register the public JWKS."""
    from joserfc.jwk import ECKey, RSAKey

    if alg not in ("ES384", "RS384"):
        raise typer.BadParameter("alg must be ES384 or RS384")
    key = (
        ECKey.generate_key("P-384", private=True)
        if alg == "ES384"
        else RSAKey.generate_key(2048, private=True)
    )
    key.ensure_kid()
    private = out.with_name(out.name + ".private.jwk.json")
    public = out.with_name(out.name + ".jwks.json")
    private.write_text(json.dumps({**key.as_dict(private=True), "alg": alg}))
    private.chmod(0o600)
    public.write_text(json.dumps({"keys": [{**key.as_dict(private=False), "alg": alg}]}))
    typer.echo(
        f"private key: {private}  (keep it secret)\npublic JWKS: {public}  (register it: clients add --jwks)"
    )


@clients_app.command("token")
def token(
    client_id: Annotated[str, typer.Argument(help="The registered client id")],
    key: Annotated[Path, typer.Option(help="The client's private JWK (from clients keygen)")],
    url: Annotated[str, typer.Option(help="The gateway's base URL")] = "http://127.0.0.1:8080",
    scope: Annotated[
        str, typer.Option(help="Scopes to ask for (default: all the client has)")
    ] = "",
) -> None:
    """Get an access token as the client would (a signed assertion posted to /auth/token) and
    print it, e.g. for curl -H "Authorization: Bearer $(fhir-gateway clients token demo --key …)"."""
    try:
        typer.echo(fetch_token(url, client_id, key, scope))
    except TokenRefused as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc


class TokenRefused(Exception):
    """No token: the gateway did not answer, or refused the client (the message says which)."""


def fetch_token(url: str, client_id: str, key: Path, scope: str = "") -> str:
    """An access token for a registered client: its signed assertion posted to ``url``/auth/token."""
    import time
    import uuid

    import httpx
    from joserfc import jwt
    from joserfc.jwk import import_key

    private = json.loads(key.read_text())
    signing_key = import_key(private)
    alg = private.get("alg") or ("ES384" if private.get("kty") == "EC" else "RS384")
    token_url = url.rstrip("/") + "/auth/token"
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "exp": int(time.time()) + 240,
        "jti": str(uuid.uuid4()),
    }
    assertion = jwt.encode(
        {"alg": alg, "kid": signing_key.kid}, claims, signing_key, algorithms=[alg]
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
        **({"scope": scope} if scope else {}),
    }
    try:
        answer = httpx.post(token_url, data=form, timeout=30)
    except httpx.HTTPError as exc:
        raise TokenRefused(f"cannot reach {token_url}: {exc}") from exc
    if answer.status_code != 200:
        raise TokenRefused(f"refused ({answer.status_code}): {answer.text}")
    return str(answer.json()["access_token"])


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def apply_insecure_dev(host: str, insecure_dev: bool) -> None:
    """``serve --insecure-dev``: authentication off, for the factory uvicorn re-reads; loopback only."""
    import os

    from fhir_gateway.settings import get_settings

    if insecure_dev:
        if not _loopback(host):
            typer.echo(
                "error: --insecure-dev only binds to loopback (127.0.0.1, ::1, localhost)", err=True
            )
            raise typer.Exit(2)
        os.environ["FHIR_GATEWAY_AUTH_ENABLED"] = "false"
        get_settings.cache_clear()
    settings = get_settings()
    if not settings.auth_enabled and not _loopback(host):
        typer.echo(
            "error: authentication is off (FHIR_GATEWAY_AUTH_ENABLED=false): refusing to bind to a "
            f"non-loopback interface ({host})",
            err=True,
        )
        raise typer.Exit(2)


def auth_banner(auth_enabled: bool, base: str) -> str:
    if not auth_enabled:
        return (
            "WARNING: --insecure-dev: authentication and access control are OFF; "
            "every request acts as the gateway itself. Never expose this server."
        )
    return "\n".join(
        [
            "  authentication: SMART backend services (token endpoint "
            + base
            + "/auth/token). A demo client:",
            "    fhir-gateway clients keygen demo",
            "    fhir-gateway clients add --client-id demo --jwks demo.jwks.json --role case-manager \\",
            "        --organization Organization/care-coordination --scope 'system/*.cruds'",
            '    curl -H "Authorization: Bearer $(fhir-gateway clients token demo --key demo.private.jwk.json'
            f' --url {base})" {base}/CarePlan',
        ]
    )
