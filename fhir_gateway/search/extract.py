"""Resource dict → search-index rows, one list of row dicts per index table.

Pure: no database. Each search parameter's FHIRPath gives typed values (the FHIR type of each
node, e.g. ``Period`` or ``Identifier``); the value's type decides the rows. The expression runs as
a plain Python getter where it compiles (``search/compiled.py``: nearly all of them), on fhirpathpy
otherwise; both give the same values. ``_id`` and ``_lastUpdated`` are not indexed: they are
columns of ``resources``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from fhirpathpy.engine.nodes import ResourceNode

from fhir_gateway.search import values as v
from fhir_gateway.search.compiled import Fallback
from fhir_gateway.search.registry import Registry, SearchParam, get_registry, split_union

__all__ = [
    "IndexRows",
    "extract",
    "typed_values",
    "TABLE_COLUMNS",
    "NOT_INDEXED",
    "identifier_param",
]

IndexRows = dict[str, list[dict[str, Any]]]

# Every row of a table carries the same keys (executemany needs uniform rows).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "string": ("param", "value", "exact"),
    "token": ("param", "system", "code", "text"),
    "reference": ("param", "target_type", "target_id", "url"),
    "date": ("param", "low", "high"),
    "number": ("param", "value", "low", "high"),
    "quantity": ("param", "value", "low", "high", "system", "code", "unit"),
    "uri": ("param", "value"),
}
NOT_INDEXED = frozenset({"_id", "_lastUpdated"})
_CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})
_QUANTITY_TYPES = frozenset(
    {"Quantity", "SimpleQuantity", "Age", "Duration", "Distance", "Count", "Money", "MoneyQuantity"}
)
_FIRST_STEP = re.compile(r"^\(*\s*[A-Za-z]+\.([A-Za-z]+)")


def identifier_param(code: str) -> str:
    """Where a reference parameter's ``Reference.identifier`` goes (idx_token), for :identifier."""
    return f"{code}:identifier"


def extract(
    resource: Mapping[str, Any], registry: Registry | None = None, *, compiled: bool = True
) -> IndexRows:
    """All index rows for ``resource``, keyed by index table kind (string, token, …);
    ``compiled=False`` evaluates every expression with fhirpathpy (the reference, for tests and
    the benchmark)."""
    registry = registry or get_registry()
    rows: IndexRows = {}
    for param in _applicable(registry, str(resource.get("resourceType")), tuple(resource)):
        try:
            values = typed_values(param, resource, compiled=compiled)
        except Exception:  # noqa: BLE001 - one odd expression must not block a valid write
            continue
        for ftype, data in values:
            if data is not None:
                for kind, row in _rows(param, ftype, data):
                    rows.setdefault(kind, []).append(row)
    return rows


_PLANS: dict[tuple[str, tuple[str, ...]], tuple[Registry, int, list[SearchParam]]] = {}
_PLANS_BOUND = 2048  # (type, top-level elements) pairs: writes of one kind repeat a few shapes


def _applicable(registry: Registry, resource_type: str, keys: tuple[str, ...]) -> list[SearchParam]:
    """The indexed parameters of ``resource_type`` that may give values for a resource with
    top-level elements ``keys``, worked out once per shape and registry version."""
    known = _PLANS.get((resource_type, keys))
    if known is not None and known[0] is registry and known[1] == registry.version:
        return known[2]
    version = registry.version
    plan = [
        param
        for param in registry.for_type(resource_type).values()
        if param.code not in NOT_INDEXED
        and param.supported
        and param.type != "composite"
        and _may_have_values(param, keys)
    ]
    if len(_PLANS) >= _PLANS_BOUND:
        _PLANS.clear()
    _PLANS[(resource_type, keys)] = (registry, version, plan)
    return plan


def typed_values(
    param: SearchParam, resource: Mapping[str, Any], *, compiled: bool = True
) -> list[tuple[str | None, Any]]:
    """(FHIR type or None, JSON value) of each value ``param`` indexes in ``resource``; an
    extension-only value (``_given`` alone) is (None, None)."""
    getter = param.compiled() if compiled else None
    if getter is not None:
        try:
            return getter(resource)
        except Fallback:
            pass  # a shape the getter leaves to fhirpathpy
    return [_unwrap(node) for node in param.evaluate(resource)]


def _first_steps(param: SearchParam) -> frozenset[str] | None:
    steps = set()
    for part in split_union(param.expression or ""):
        match = _FIRST_STEP.match(part)
        if not match:
            return None  # no simple first step: always evaluate
        steps.add(match.group(1))
    return frozenset(steps)


_STEPS_CACHE: dict[tuple[str, str, str | None], frozenset[str] | None] = {}


def _may_have_values(param: SearchParam, keys: tuple[str, ...]) -> bool:
    # Skip FHIRPath evaluation when no top-level element the expression starts from is present;
    # a prefix test covers choice types (value → valueQuantity).
    cache_key = (param.resource_type, param.code, param.expression)
    if cache_key not in _STEPS_CACHE:
        _STEPS_CACHE[cache_key] = _first_steps(param)
    steps = _STEPS_CACHE[cache_key]
    if steps is None:
        return True
    return any(key.startswith(step) for step in steps for key in keys)


def _unwrap(node: Any) -> tuple[str | None, Any]:
    if isinstance(node, ResourceNode):
        return _visible(node.path, node.data)
    return None, node


def _visible(ftype: Any, data: Any) -> tuple[str | None, Any]:
    if isinstance(data, Mapping) and list(data) == ["extension"]:
        return None, None
    return ftype, data


def _rows(param: SearchParam, ftype: str | None, data: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    builder = _BUILDERS[param.type]
    for row in builder(param.code, ftype, data):
        row.setdefault("param", param.code)
        yield row.pop("_kind", param.type), row


# -- strings -------------------------------------------------------------------------------------

_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
_ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")


def _strings(code: str, ftype: str | None, data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, str):
        texts: list[str] = [data]
    elif isinstance(data, Mapping):
        parts = (
            _ADDRESS_PARTS
            if ftype == "Address" or "city" in data or "line" in data
            else _NAME_PARTS
        )
        texts = []
        for part in parts:
            value = data.get(part)
            if isinstance(value, str):
                texts.append(value)
            elif isinstance(value, list):
                texts.extend(x for x in value if isinstance(x, str))
    else:
        return
    for text in texts:
        if text:
            yield {"value": v.normalize(text)[: v.STRING_LEN], "exact": text[: v.STRING_LEN]}


# -- tokens --------------------------------------------------------------------------------------


def _token(system: Any, code: Any, text: Any = None) -> dict[str, Any]:
    return {
        "system": v.clip(system, v.TOKEN_SYSTEM_LEN) if isinstance(system, str) else None,
        "code": v.clip(code, v.TOKEN_CODE_LEN) if isinstance(code, str) else None,
        "text": v.normalize(text)[: v.STRING_LEN] if isinstance(text, str) and text else None,
    }


def _tokens(code: str, ftype: str | None, data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, bool):
        yield _token(None, "true" if data else "false")
    elif isinstance(data, str | int | Decimal):
        yield _token(None, str(data))
    elif isinstance(data, Mapping):
        if ftype == "CodeableConcept" or "coding" in data:
            for coding in data.get("coding") or ():
                if isinstance(coding, Mapping):
                    yield _token(coding.get("system"), coding.get("code"), coding.get("display"))
            if data.get("text"):
                yield _token(None, None, data["text"])
        elif ftype == "ContactPoint" or (
            ftype is None and data.get("system") in _CONTACT_SYSTEMS and "value" in data
        ):
            yield _token(data.get("system"), data.get("value"))
        elif ftype == "Identifier" or ("value" in data and "code" not in data):
            type_text = (
                (data.get("type") or {}).get("text")
                if isinstance(data.get("type"), Mapping)
                else None
            )
            yield _token(data.get("system"), data.get("value"), type_text)
        elif "code" in data or "system" in data:  # Coding, Quantity-like
            yield _token(data.get("system"), data.get("code"), data.get("display"))


# -- references ----------------------------------------------------------------------------------


def _references(code: str, ftype: str | None, data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, str):  # canonical or uri
        yield _reference(None, None, data.split("|", 1)[0])
        return
    if not isinstance(data, Mapping):
        return
    ref = data.get("reference")
    if isinstance(ref, str) and ref and not ref.startswith("#"):
        target_type, target_id = v.split_reference(ref)
        if target_type:
            yield _reference(target_type, target_id, None)
        elif "://" in ref or ref.startswith("urn:"):
            yield _reference(None, None, ref)
    identifier = data.get("identifier")
    if isinstance(identifier, Mapping) and identifier.get("value"):
        row = _token(identifier.get("system"), identifier.get("value"))
        row["_kind"] = "token"
        row["param"] = identifier_param(code)
        yield row


def _reference(target_type: str | None, target_id: str | None, url: str | None) -> dict[str, Any]:
    return {
        "target_type": v.clip(target_type, v.TYPE_LEN),
        "target_id": v.clip(target_id, v.ID_LEN),
        "url": v.clip(url, v.URI_LEN),
    }


# -- dates ---------------------------------------------------------------------------------------


def _dates(code: str, ftype: str | None, data: Any) -> Iterator[dict[str, Any]]:
    for low, high in _date_ranges(ftype, data):
        yield {"low": low, "high": high}


def _date_ranges(ftype: str | None, data: Any) -> Iterator[tuple[datetime, datetime]]:
    if isinstance(data, Mapping):
        if "event" in data or "repeat" in data:  # Timing
            for event in data.get("event") or ():
                yield from _date_ranges(None, event)
            bounds = (data.get("repeat") or {}).get("boundsPeriod")
            if bounds:
                yield from _date_ranges("Period", bounds)
            return
        if "start" in data or "end" in data:  # Period
            low = _bound(data.get("start"), 0) or v.MIN_TIME
            high = _bound(data.get("end"), 1) or v.MAX_TIME
            yield low, high
        return
    try:
        yield v.date_range(str(data).lstrip("@"))
    except (ValueError, OverflowError):
        return


def _bound(value: Any, which: int) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return v.date_range(value)[which]
    except (ValueError, OverflowError):
        return None


# -- numbers and quantities ----------------------------------------------------------------------


def _numbers(code: str, ftype: str | None, data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, bool) or not isinstance(data, int | float | Decimal | str):
        return
    try:
        value, low, high = v.number_range(str(data))
    except ValueError:
        return
    yield {"value": float(value), "low": float(low), "high": float(high)}


def _quantities(code: str, ftype: str | None, data: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(data, Mapping) or (ftype and ftype not in _QUANTITY_TYPES):
        return
    for row in _numbers(code, None, data.get("value")):
        row["system"] = v.clip(data.get("system"), v.TOKEN_SYSTEM_LEN)
        row["code"] = v.clip(data.get("code") or data.get("currency"), 128)
        row["unit"] = v.clip(data.get("unit"), 128)
        yield row


def _uris(code: str, ftype: str | None, data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, str) and data:
        yield {"value": data[: v.URI_LEN]}


_BUILDERS = {
    "string": _strings,
    "token": _tokens,
    "reference": _references,
    "date": _dates,
    "number": _numbers,
    "quantity": _quantities,
    "uri": _uris,
}
