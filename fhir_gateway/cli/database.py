"""What the commands share: the gateway's database for one command, the schema upgrade, and one
way a refusal becomes a message and an exit code (1: not found, 2: refused)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from fhir_gateway.settings import Settings
    from fhir_gateway.store.db import Database

__all__ = ["open_database", "command_database", "upgrade_schema", "fail"]


def open_database(*, rules: bool = False, migrate: bool = False) -> tuple[Database, Settings]:
    """The database of FHIR_GATEWAY_DATABASE_URL. ``migrate`` brings its schema up to date first;
    ``rules`` registers the write rules (plans, referral rules, notifications, labels, alerts), so
    that what the command writes passes them as an API write would."""
    from fhir_gateway.settings import get_settings
    from fhir_gateway.store.db import Database

    settings = get_settings()
    if migrate:
        upgrade_schema(settings.database_url)
    database = Database(settings.database_url, pool_size=settings.db_pool_size)
    if rules:
        from fhir_gateway.app import install_rules

        install_rules(settings, database)
    return database, settings


@contextmanager
def command_database(
    *, rules: bool = False, migrate: bool = False, after_error: str = ""
) -> Iterator[tuple[Database, Settings]]:
    """``open_database`` for the length of a command, closed at its end; a GatewayError raised
    inside is told as ``error: …`` (followed by ``after_error``) with its exit code."""
    from fhir_gateway.errors import GatewayError, NotFound

    database, settings = open_database(rules=rules, migrate=migrate)
    try:
        yield database, settings
    except GatewayError as exc:
        fail(exc.message + after_error, 1 if isinstance(exc, NotFound) else 2)
    finally:
        database.dispose()


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def upgrade_schema(url: str, revision: str = "head") -> None:
    from fhir_gateway.store.db import make_engine
    from fhir_gateway.store.migrate import upgrade

    engine = make_engine(url)
    try:
        upgrade(engine, revision)
    finally:
        engine.dispose()
