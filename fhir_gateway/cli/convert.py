"""`fhir-gateway convert FILE|DIR|-`: HL7 v2 ADT → FHIR transaction Bundle on stdout."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from adapters.hl7v2 import ConvertOptions, HL7Error, SenderProfile, convert, split_batch
from fhir_gateway.cli.progress import steps

__all__ = ["convert_command", "validate_bundle"]

_SUFFIXES = (".hl7", ".txt", ".er7", ".msg")


def validate_bundle(bundle: dict[str, Any]) -> list[str]:
    """Problems fhir.resources R4B finds in each entry's resource (empty when all are valid)."""
    from fhir.resources.R4B import get_fhir_model_class

    problems = []
    for i, entry in enumerate(bundle.get("entry", [])):
        res = entry["resource"]
        try:
            get_fhir_model_class(res["resourceType"]).model_validate(res)
        except Exception as exc:  # pydantic's ValidationError and unknown types alike
            problems.append(f"entry {i} {res.get('resourceType')}: {exc}")
    return problems


def _dump(bundle: dict[str, Any], pretty: bool) -> str:
    option = orjson.OPT_INDENT_2 if pretty else 0
    return orjson.dumps(bundle, option=option).decode()


def _warn(line: str) -> None:
    typer.echo(f"warning: {line}", err=True)


def _convert_one(
    data: bytes,
    options: ConvertOptions,
    pretty: bool,
    validate: bool,
    warn: Callable[[str], None] = _warn,
) -> list[str]:
    """Bundles (as JSON text) for every message in ``data``; raises HL7Error or ValueError."""
    head = data.lstrip(b"\xef\xbb\xbf \r\n\t")[:3]
    texts: list[str | bytes] = list(split_batch(data)) if head in (b"FHS", b"BHS") else [data]
    out = []
    for number, text in enumerate(texts, 1):
        result = convert(text, options=options)
        for w in result.warnings:
            warn(f"message {number}: {w}" if len(texts) > 1 else w)
        if validate:
            problems = validate_bundle(result.bundle)
            if problems:
                raise ValueError("; ".join(problems))
        out.append(_dump(result.bundle, pretty))
    return out


def _folder(path: Path, options: ConvertOptions, pretty: bool, validate: bool) -> int:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _SUFFIXES)
    failed: list[tuple[Path, str]] = []
    converted = warned = 0
    with steps(f"Converting {len(files)} files", total=len(files)) as bar:
        for file in files:

            def warn(line: str, file: Path = file) -> None:
                nonlocal warned
                warned += 1
                bar.note(f"warning: {file}: {line}")  # which file, in a folder of hundreds

            try:
                for text in _convert_one(file.read_bytes(), options, pretty, validate, warn):
                    typer.echo(text)
                    converted += 1
            except (HL7Error, ValueError) as exc:
                failed.append((file, str(exc)))
            bar.advance()
    typer.echo(
        f"{converted} bundles from {len(files) - len(failed)} files; {len(failed)} failed; "
        f"{warned} warnings",
        err=True,
    )
    for file, reason in failed:
        typer.echo(f"  {file}: {reason}", err=True)
    return 1 if failed else 0


def convert_command(
    source: Annotated[
        str, typer.Argument(help="An HL7 v2 file, a folder of them, or - for stdin.")
    ],
    pretty: Annotated[bool, typer.Option("--pretty/--compact", help="Indent the JSON.")] = True,
    validate: Annotated[
        bool, typer.Option("--validate", help="Check every resource with fhir.resources (R4B).")
    ] = False,
    zone: Annotated[
        str, typer.Option("--zone", help="IANA zone for times sent without an offset.")
    ] = "UTC",
    mappings: Annotated[
        Path | None,
        typer.Option("--mappings", help="Folder of ConceptMaps overriding the built-in maps."),
    ] = None,
) -> None:
    """Convert HL7 v2 ADT messages to FHIR R4 transaction Bundles."""
    options = ConvertOptions(default_sender=SenderProfile(zone=zone), mappings_dir=mappings)
    path = Path(source)
    if source != "-" and path.is_dir():
        raise typer.Exit(_folder(path, options, pretty, validate))
    if source != "-" and not path.is_file():
        typer.echo(f"error: {source} is not a file or folder", err=True)
        raise typer.Exit(2)
    data = sys.stdin.buffer.read() if source == "-" else path.read_bytes()
    try:
        for text in _convert_one(data, options, pretty, validate):
            typer.echo(text)
    except HL7Error as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except ValueError as exc:
        typer.echo(f"invalid FHIR: {exc}", err=True)
        raise typer.Exit(1) from None
