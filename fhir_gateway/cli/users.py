"""`fhir-gateway users add|list|remove`: people who sign in to the web pages."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from fhir_gateway.cli.database import command_database, fail

__all__ = ["users_app", "web_banner"]

users_app = typer.Typer(
    no_args_is_help=True, help="People who sign in to the web inbox and dashboard"
)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="The name the person signs in with")],
    role: Annotated[str, typer.Option(help="partner | case-manager | admin | ehr | hospital")],
    organization: Annotated[
        str | None, typer.Option(help="Organization/ID the person acts for")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin")
    ] = False,
    name: Annotated[
        str | None,
        typer.Option(help="The person's name, as pages and notes show it (case managers)"),
    ] = None,
) -> None:
    """Create a user with a role and an Organization (as an API client); the password is hashed (argon2).
    A case manager (or admin) is also a Practitioner, whom patients' care teams name."""
    from fhir_gateway.context import SYSTEM
    from fhir_gateway.web import CASE_MANAGER_ACCOUNTS, add_user, ensure_practitioner

    with command_database() as (database, _):
        _must_exist(database, organization)
        password = _password(password_stdin)
        with database.session() as session:
            user = add_user(session, username, password, role, organization)
            if role in CASE_MANAGER_ACCOUNTS:
                ensure_practitioner(session, SYSTEM, username, name)
    typer.echo(f"user {user.username}: role {user.role}, organization {user.organization or '-'}")


def web_banner(base: str) -> str:
    """What ``serve`` prints about the web pages: where they are and how to make the first user."""
    return "\n".join(
        [
            f"  web pages (worklist, plan review, partner inbox): {base}/web  "
            f"(a browser opening {base}/ lands there)",
            "    first user: fhir-gateway users add carla --role case-manager "
            "--organization Organization/care-coordination --name 'Carla Mendes'",
        ]
    )


def _must_exist(database, organization: str | None) -> None:  # type: ignore[no-untyped-def]
    """A user acting for an Organization the gateway does not hold would see nothing, silently."""
    from fhir_gateway.errors import InvalidRequest
    from fhir_gateway.fhir.references import Reference
    from fhir_gateway.store import repository

    org_id = Reference.id_of(organization, "Organization")
    if org_id is None:
        return  # no organization, or a malformed one: add_user says what is wrong
    with database.session(readonly=True) as session:
        stored = repository.read(session, "Organization", org_id)
    if stored is None or stored.deleted:
        raise InvalidRequest(
            f"{organization} does not exist: load the partner directory or create it first"
        )


@users_app.command("list")
def list_command() -> None:
    """The users (never their password hashes)."""
    from fhir_gateway.web import list_users

    with command_database() as (database, _), database.session(readonly=True) as session:
        users = list_users(session)
    for user in users:
        typer.echo(f"{user.username}\t{user.role}\t{user.organization or '-'}")


@users_app.command("remove")
def remove(username: Annotated[str, typer.Argument(help="The user to remove")]) -> None:
    """Remove a user: their open sessions end at their next page."""
    from fhir_gateway.web import remove_user

    with command_database() as (database, _), database.session() as session:
        removed = remove_user(session, username)
    if not removed:
        fail(f"no user {username}")
    typer.echo(f"removed {username}")
