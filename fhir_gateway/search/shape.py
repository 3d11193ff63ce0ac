"""``_summary`` and ``_elements``: the subset of a resource a search returns, tagged SUBSETTED.

The summary elements per type come from the R4 definitions (isSummary, plus required elements),
shipped as ``fhir_gateway/data/summary-elements.json``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import orjson

__all__ = ["shape_resource", "SUBSETTED"]

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
_ALWAYS = ("resourceType", "id", "meta")
_DATA = Path(__file__).resolve().parent.parent / "data" / "summary-elements.json"


@cache
def _summary_elements() -> dict[str, frozenset[str]]:
    raw = orjson.loads(_DATA.read_bytes())
    return {res_type: frozenset(names) for res_type, names in raw.items()}


def shape_resource(
    resource: dict[str, Any], summary: str | None, elements: Iterable[str]
) -> dict[str, Any]:
    """The resource as ``_summary`` (true|text|data) or ``_elements`` asks; unchanged otherwise."""
    elements = tuple(elements)
    if summary in ("true", "text"):
        keep = _summary_keep(resource, summary)
    elif summary == "data":
        keep = frozenset(k for k in resource if k != "text")
    elif elements:
        keep = frozenset(elements)
    else:
        return resource
    shaped = {k: v for k, v in resource.items() if k in keep or k in _ALWAYS}
    if len(shaped) < len(resource):
        _tag_subsetted(shaped)
    return shaped


def _summary_keep(resource: dict[str, Any], summary: str) -> frozenset[str]:
    if summary == "text":
        return frozenset({"text"})
    names = _summary_elements().get(str(resource.get("resourceType")), frozenset())
    # Choice elements are listed by their typed names (valueQuantity); primitives' _ siblings go too.
    return frozenset(k for k in resource if k in names or k.lstrip("_") in names)


def _tag_subsetted(resource: dict[str, Any]) -> None:
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag") or [] if t.get("code") != "SUBSETTED"]
    meta["tag"] = [*tags, SUBSETTED]
    resource["meta"] = meta
