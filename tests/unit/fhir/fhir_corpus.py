"""Real FHIR resources for the validators' tests, and the walk their mutations are made with."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "data"


def _corpus() -> list[dict[str, Any]]:
    """The shipped FHIR samples, the converter's expected bundles, and every version the gateway
    wrote for four discharges (plans, Tasks, Flags, Provenance...)."""
    files = sorted((DATA / "fhir").rglob("*.json"))
    files += sorted((DATA / "hl7v2" / "microsoft-fhir-converter" / "expected").glob("*.json"))
    docs = [json.loads(path.read_text()) for path in files]
    versions = DATA / "fhir" / "gateway-discharges" / "versions.ndjson"
    docs += [json.loads(line) for line in versions.read_text().splitlines() if line.strip()]
    return docs


CORPUS = _corpus()


def paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every element's path (keys and indexes), the document's own () first."""
    yield path
    if isinstance(node, dict | list):
        for key, child in node.items() if isinstance(node, dict) else enumerate(node):
            yield from paths(child, (*path, key))


def parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc
