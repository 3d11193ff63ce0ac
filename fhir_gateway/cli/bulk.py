"""`fhir-gateway import FILE.ndjson [FILE…]`: load NDJSON resources through the bulk write path.

One transaction for all the files: a bad line stops the import, names its file and line, and
leaves the database as it was.
"""

from __future__ import annotations

import gzip
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from fhir_gateway.cli.database import command_database
from fhir_gateway.cli.progress import Steps, steps

__all__ = ["import_command", "read_ndjson"]


def read_ndjson(paths: list[Path]) -> Iterator[tuple[str, Any]]:
    """``("FILE:LINE", resource)`` for every non-blank line; a line that is not JSON raises
    ``BulkError`` naming it. ``.gz`` files are read decompressed."""
    from fhir_gateway.store.bulk import BulkError

    for path in paths:
        with _open(path) as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    yield f"{path}:{number}", orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise BulkError(f"{path}:{number}: not valid JSON ({exc})") from exc


def _counted(lines: Iterator[tuple[str, Any]], bar: Steps) -> Iterator[tuple[str, Any]]:
    """The resources as they are read, each a step of the progress bar (named by its file)."""
    current = ""
    for where, resource in lines:
        name = where.rpartition(":")[0]
        if name != current:
            current = name
            bar.describe(f"Importing {name}")
        yield where, resource
        bar.advance()


def _open(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def import_command(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="NDJSON files (.ndjson, or .ndjson.gz): one resource a line",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    validate: Annotated[
        bool,
        typer.Option(
            "--validate/--no-validate", help="Check each resource against the R4 models first"
        ),
    ] = True,
    keep_last_updated: Annotated[
        bool,
        typer.Option(
            "--keep-last-updated",
            help="Keep each resource's meta.lastUpdated (default: the time of the import)",
        ),
    ] = False,
    migrate: Annotated[bool, typer.Option(help="Bring the schema up to date first")] = True,
) -> None:
    """Load resources in bulk into FHIR_GATEWAY_DATABASE_URL, as version 1 with their search index.

    For trusted data: the write rules of the API (care plans, referral workflow, notifications,
    derived security labels such as 42 CFR Part 2) do not run. Resources keep their ids (or get
    new ones); an id that exists already is an error.
    """
    from fhir_gateway.store import bulk
    from fhir_gateway.store.migrate import upgrade

    started = time.perf_counter()
    with command_database(after_error="\nnothing was imported") as (database, _):
        if migrate:
            upgrade(database.engine)
        with database.session() as session, steps(f"Importing {len(files)} file(s)") as bar:
            result = bulk.load_labelled(
                session,
                _counted(read_ndjson(files), bar),
                validate=validate,
                keep_last_updated=keep_last_updated,
            )
        with database.session() as session:
            bulk.analyze(session)
    seconds = time.perf_counter() - started
    for res_type, count in sorted(result.by_type.items()):
        typer.echo(f"{res_type:<24} {count:>10,}")
    typer.echo(
        f"imported {result.total:,} resources ({result.index_rows:,} search-index rows) in {seconds:.1f}s"
        f" ({result.total / max(seconds, 1e-9):,.0f}/s)"
    )
