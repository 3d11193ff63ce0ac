"""Search values that a resource must match, derived from the official R4 SearchParameter
expressions (``data/search-parameters.json``): the oracle for "every claimed parameter works".

fhirpathpy has no ``resolve()``; ``X.where(resolve() is T)`` is read as "references of type T".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fhirpathpy
from fhirpathpy.models import models

__all__ = ["ParamDef", "definition", "probe_value", "no_match_value"]

_PATH = Path(__file__).parent / "data" / "search-parameters.json"
_RESOLVE = re.compile(r"\.where\(\s*resolve\(\)\s+is\s+(\w+)\s*\)")
_CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})


@dataclass(frozen=True, slots=True)
class ParamDef:
    code: str
    type: str
    expression: str
    targets: tuple[str, ...]


@cache
def _definitions() -> tuple[dict[str, ParamDef], dict[tuple[str, str], ParamDef]]:
    by_url: dict[str, ParamDef] = {}
    by_code: dict[tuple[str, str], ParamDef] = {}
    for raw in json.loads(_PATH.read_text(encoding="utf-8"))["parameters"]:
        param = ParamDef(
            raw["code"], raw["type"], raw.get("expression", ""), tuple(raw.get("target", ()))
        )
        by_url[raw["url"]] = param
        for base in raw.get("base", ()):
            by_code[(base, raw["code"])] = param
    return by_url, by_code


def definition(res_type: str, code: str, url: str | None) -> ParamDef | None:
    by_url, by_code = _definitions()
    if url and url in by_url:
        return by_url[url]
    return (
        by_code.get((res_type, code))
        or by_code.get(("Resource", code))
        or by_code.get(("DomainResource", code))
    )


def _split_union(expression: str) -> Iterator[str]:
    depth, start = 0, 0
    for i, char in enumerate(expression):
        depth += char == "("
        depth -= char == ")"
        if char == "|" and depth == 0:
            yield expression[start:i].strip()
            start = i + 1
    yield expression[start:].strip()


@cache
def _compiled(
    res_type: str, expression: str
) -> tuple[tuple[Callable[..., list[Any]], str | None], ...]:
    parts = []
    for part in _split_union(expression):
        head = part.lstrip("(").strip()
        if (
            not head.startswith((f"{res_type}.", "Resource.", "DomainResource."))
            and head != res_type
        ):
            continue
        match = _RESOLVE.search(part)
        # the common parameters are written on the base types; fhirpathpy wants the real one
        plain = re.sub(
            r"^(\(*)(Resource|DomainResource)\.", rf"\1{res_type}.", _RESOLVE.sub("", part)
        )
        try:
            parts.append(
                (fhirpathpy.compile(plain, model=models["r4"]), match.group(1) if match else None)
            )
        except Exception:  # noqa: BLE001 - an expression fhirpathpy cannot compile gives no probe
            continue
    return tuple(parts)


def _escape(text: str) -> str:
    return re.sub(r"([\\,|$])", r"\\\1", text)


def _token(data: Any) -> str | None:
    if isinstance(data, bool):
        return "true" if data else "false"
    if isinstance(data, str):
        return _escape(data)
    if not isinstance(data, Mapping):
        return None
    if "coding" in data:
        return next((v for c in data["coding"] if (v := _token(c))), None)
    if "code" in data and isinstance(data["code"], str):
        return (
            f"{_escape(data['system'])}|{_escape(data['code'])}"
            if data.get("system")
            else _escape(data["code"])
        )
    if isinstance(data.get("value"), str):
        system = data.get("system")
        if system and system not in _CONTACT_SYSTEMS:
            return f"{_escape(system)}|{_escape(data['value'])}"
        return _escape(data["value"])
    return None


def _string(data: Any) -> str | None:
    if isinstance(data, str):
        return _escape(data)
    if isinstance(data, Mapping):
        for key in (
            "family",
            "given",
            "text",
            "city",
            "line",
            "state",
            "postalCode",
            "country",
            "district",
            "display",
        ):
            value = data.get(key)
            if isinstance(value, list) and value and isinstance(value[0], str):
                return _escape(value[0])
            if isinstance(value, str):
                return _escape(value)
    return None


def _date(data: Any) -> str | None:
    if isinstance(data, Mapping):
        data = data.get("start") or data.get("end")
    if isinstance(data, str) and re.match(r"^\d{4}-\d{2}-\d{2}", data):
        return f"ge{data[:10]}"  # the range at or after that day overlaps the value
    return None


def _reference(data: Any, target: str | None) -> str | None:
    if isinstance(data, str):  # a canonical: searched by its URL
        return _escape(data)
    ref = data.get("reference") if isinstance(data, Mapping) else None
    if not isinstance(ref, str):
        return None
    match = re.search(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})$", ref.split("/_history")[0])
    if not match or (target and match.group(1) != target):
        return None
    return f"{match.group(1)}/{match.group(2)}"


def _quantity(data: Any) -> str | None:
    if isinstance(data, Mapping) and isinstance(data.get("value"), (int, float)):
        value = data["value"]
        if data.get("system") and data.get("code"):
            return f"{value}|{_escape(data['system'])}|{_escape(data['code'])}"
        return str(value)
    return None


def _number(data: Any) -> str | None:
    return str(data) if isinstance(data, (int, float)) and not isinstance(data, bool) else None


def _uri(data: Any) -> str | None:
    return data if isinstance(data, str) else None


def probe_value(res_type: str, param: ParamDef, resource: Mapping[str, Any]) -> str | None:
    """A value of ``param`` that ``resource`` matches, or None when it has none (or we cannot tell)."""
    for compiled, target in _compiled(res_type, param.expression):
        try:
            nodes = compiled(resource)
        except Exception:  # noqa: BLE001
            continue
        for node in nodes:
            data = getattr(node, "data", node)
            value = _derive(param.type, data, target)
            if value:
                return value
    return None


def _derive(param_type: str, data: Any, target: str | None) -> str | None:
    if param_type == "reference":
        return _reference(data, target)
    derive = {
        "token": _token,
        "string": _string,
        "date": _date,
        "quantity": _quantity,
        "number": _number,
        "uri": _uri,
    }.get(param_type)
    return derive(data) if derive else None


def is_boolean(param: ParamDef) -> bool:
    """Is the parameter a token over a boolean element (``Patient.active``)? Read from the R4 JSON
    schema: such a parameter takes only ``true`` or ``false``, never ``system|code``."""
    from conformance.schema import _schema

    match = re.fullmatch(r"([A-Z][A-Za-z]+)\.([a-z][A-Za-z]*)", param.expression.strip())
    if param.type != "token" or not match:
        return False
    element = (
        _schema()["definitions"]
        .get(match.group(1), {})
        .get("properties", {})
        .get(match.group(2), {})
    )
    return bool(element.get("$ref") == "#/definitions/boolean")


def no_match_value(param: ParamDef, run_id: str, served: Collection[str] = ()) -> str | None:
    """A well-formed value that no resource of the run can match (None: type not probed).

    A reference names a target type the server serves (a server may refuse the others); a
    boolean has no value that matches nothing (and ``system|code`` is not a boolean)."""
    if is_boolean(param):
        return None
    if param.type == "reference":
        target = next((t for t in param.targets if t in served), None)
        return f"{target}/nomatch-{run_id}" if target else f"nomatch-{run_id}"
    return {
        "token": f"urn:kit:none|nomatch-{run_id}",
        "string": f"Zzq{run_id}nomatch",
        "date": "lt1801-01-01",
        "quantity": "lt-99999999",
        "number": "lt-99999999",
        "uri": f"urn:kit:{run_id}:nomatch",
    }.get(param.type)
