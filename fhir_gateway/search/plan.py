"""Parse a FHIR search query (name, value pairs in order) into an immutable, typed plan.

Pure: no I/O, no SQL. ``store/search.py`` turns a plan into SQL.

    criteria   AND of Criterion; each holds one node per searched type
    node       Test (one parameter, OR of values) | Chain | Has | AllOf | AnyOf
    results    _sort, _count, _include/_revinclude, _total, _summary, _elements, _cursor

Malformed input raises ``InvalidSearch`` naming the parameter. Unknown parameters raise too when
``strict``; otherwise they are skipped and reported in ``SearchPlan.warnings``. A query past one of
its ``Limits`` (parameters, repeats, OR values, sort keys) raises ``TooCostly`` naming the limit.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

import orjson

from fhir_gateway.errors import InvalidSearch, TooCostly
from fhir_gateway.fhir.numbers import whole_number
from fhir_gateway.search import values as v
from fhir_gateway.search.registry import Registry, SearchParam, get_registry

__all__ = [
    "StringValue",
    "TokenValue",
    "ReferenceValue",
    "DateValue",
    "NumberValue",
    "UriValue",
    "Test",
    "Chain",
    "Has",
    "AllOf",
    "AnyOf",
    "Node",
    "Value",
    "Criterion",
    "SortKey",
    "Include",
    "Cursor",
    "SearchPlan",
    "Limits",
    "parse",
    "split_values",
    "encode_cursor",
    "decode_cursor",
    "RESULT_PARAMS",
]

PREFIXES = frozenset({"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"})
SUMMARY_MODES = frozenset({"true", "false", "text", "data", "count"})
TOTAL_MODES = frozenset({"accurate", "none", "estimate"})
RESULT_PARAMS = frozenset(
    {"_count", "_sort", "_total", "_summary", "_elements", "_cursor", "_type", "_format", "_pretty"}
)
_UNSUPPORTED = frozenset(
    {"_text", "_content", "_query", "_list", "_filter", "_contained", "_containedType"}
)
_MODIFIERS = {
    "string": {"exact", "contains", "missing"},
    "token": {"not", "text", "missing"},
    "reference": {"missing", "identifier"},
    "date": {"missing"},
    "number": {"missing"},
    "quantity": {"missing"},
    "uri": {"missing", "below", "above"},
    "composite": set(),
}
_ORDERED_TYPES = frozenset({"date", "number", "quantity"})
_SORTABLE = frozenset({"string", "token", "date", "number", "quantity", "uri", "reference"})
_ESCAPED = re.compile(r"\\(.)")
_MAX_CHAIN = 4


# -- values --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StringValue:
    text: str  # as given (for :exact)
    folded: str  # normalised (default and :contains)


@dataclass(frozen=True, slots=True)
class TokenValue:
    system: str | None
    code: str | None
    system_given: bool  # "sys|code" or "|code" (system must be absent) vs "code" (any system)


@dataclass(frozen=True, slots=True)
class ReferenceValue:
    types: tuple[str, ...]  # empty: any type
    id: str | None
    url: str | None


@dataclass(frozen=True, slots=True)
class DateValue:
    prefix: str
    low: datetime
    high: datetime


@dataclass(frozen=True, slots=True)
class NumberValue:
    prefix: str
    value: float
    low: float
    high: float
    system: str | None = None  # quantities only
    code: str | None = None
    system_given: bool = False


@dataclass(frozen=True, slots=True)
class UriValue:
    text: str


Value: TypeAlias = StringValue | TokenValue | ReferenceValue | DateValue | NumberValue | UriValue


# -- nodes ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Test:
    """One parameter against an OR of values (``missing`` set for ``:missing``)."""

    param: SearchParam
    modifier: str | None
    values: tuple[Value, ...]
    missing: bool | None = None

    @property
    def negated(self) -> bool:
        return self.modifier == "not" or (self.modifier == "missing" and bool(self.missing))


@dataclass(frozen=True, slots=True)
class Chain:
    """``ref:Type.inner``: resources whose reference ``param`` points at a match of ``inner``."""

    param: SearchParam
    targets: tuple[tuple[str, Node], ...]  # (target type, node on that type)


@dataclass(frozen=True, slots=True)
class Has:
    """``_has:Source:param:inner``: resources a matching ``Source`` points at through ``param``."""

    source_type: str
    param: SearchParam
    inner: Node


@dataclass(frozen=True, slots=True)
class AllOf:
    nodes: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    nodes: tuple[Node, ...]


Node: TypeAlias = Test | Chain | Has | AllOf | AnyOf


@dataclass(frozen=True, slots=True)
class Criterion:
    name: str
    by_type: tuple[tuple[str, Node], ...]


@dataclass(frozen=True, slots=True)
class SortKey:
    code: str
    descending: bool
    type: str  # parameter type, or "id" / "lastUpdated" for the resource columns


@dataclass(frozen=True, slots=True)
class Include:
    source_type: str  # "*" for every type
    param: str | None  # None: every reference parameter ("*")
    target_type: str | None
    iterate: bool
    reverse: bool


@dataclass(frozen=True, slots=True)
class Cursor:
    forward: bool
    keys: tuple[Any, ...]  # sort key values, then res_type, res_id


@dataclass(frozen=True, slots=True)
class SearchPlan:
    types: tuple[str, ...]
    criteria: tuple[Criterion, ...] = ()
    sort: tuple[SortKey, ...] = ()
    count: int = 20
    total: str | None = None
    summary: str | None = None
    elements: tuple[str, ...] = ()
    includes: tuple[Include, ...] = ()
    cursor: Cursor | None = None
    warnings: tuple[str, ...] = ()
    params: tuple[tuple[str, str], ...] = field(default=())  # the query, for links


@dataclass(frozen=True, slots=True)
class Limits:
    """How much one query may ask for (DESIGN decision 15); the settings of the same names."""

    search_max_parameters: int = 50
    search_max_repeats: int = 10
    search_max_includes: int = 200
    search_max_values: int = 100
    search_max_sort_keys: int = 5

    def check(self, count: int, limit: str, what: str, expression: str | None) -> None:
        allowed: int = getattr(self, limit)
        if count > allowed:
            raise TooCostly(
                f"{what}: {count} given, at most {allowed} allowed (limit {limit})",
                expression=[expression] if expression else None,
            )


# -- entry point ---------------------------------------------------------------------------------


def _is_include(name: str) -> bool:
    return name.split(":", 1)[0] in ("_include", "_revinclude")


def parse(
    resource_type: str | None,
    params: list[tuple[str, str]],
    *,
    strict: bool = False,
    base_url: str = "",
    default_count: int = 20,
    max_count: int = 1000,
    registry: Registry | None = None,
    limits: Limits | None = None,
) -> SearchPlan:
    """The plan for ``params`` on ``resource_type`` (None: a system-wide search)."""
    limits = limits or Limits()
    includes = [name for name, _ in params if _is_include(name)]
    others = [name for name, _ in params if not _is_include(name)]
    limits.check(len(includes), "search_max_includes", "_include and _revinclude values", None)
    limits.check(len(others), "search_max_parameters", "Search parameters", None)
    for name, times in Counter(others).most_common(1):
        limits.check(times, "search_max_repeats", f"Repeats of {name}", name)
    parser = _Parser(registry or get_registry(), strict, base_url.rstrip("/"), limits)
    types = parser.types(resource_type, params)
    state: dict[str, Any] = {"count": default_count, "sort": (), "includes": []}
    criteria: list[Criterion] = []
    for name, value in params:
        if name in RESULT_PARAMS or name.split(":", 1)[0] in ("_include", "_revinclude"):
            parser.result_param(name, value, types, state, max_count)
            continue
        if value == "":
            continue  # an empty parameter constrains nothing
        criterion = parser.criterion(name, value, types)
        if criterion is not None:
            criteria.append(criterion)
    if "cursor_token" in state:
        state["cursor"] = decode_cursor(state["cursor_token"], state["sort"])
    return SearchPlan(
        types=types,
        criteria=tuple(criteria),
        sort=state["sort"],
        count=state["count"],
        total=state.get("total"),
        summary=state.get("summary"),
        elements=state.get("elements", ()),
        includes=tuple(state["includes"]),
        cursor=state.get("cursor"),
        warnings=tuple(parser.warnings),
        params=tuple((n, val) for n, val in params if n != "_cursor"),
    )


def split_values(value: str) -> list[str]:
    """Split on unescaped commas, then undo ``\\,`` ``\\$`` ``\\|`` ``\\\\`` escapes."""
    parts, current, i = [], [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            current.append(value[i : i + 2])
            i += 2
            continue
        if ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _split_unescaped(value: str, sep: str) -> list[str]:
    parts, start, i = [], 0, 0
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        if value[i] == sep:
            parts.append(value[start:i])
            start = i + 1
        i += 1
    parts.append(value[start:])
    return parts


def _unescape(text: str) -> str:
    return _ESCAPED.sub(r"\1", text)


# -- cursors -------------------------------------------------------------------------------------


def encode_cursor(cursor: Cursor) -> str:
    keys = [k.isoformat() if isinstance(k, datetime) else k for k in cursor.keys]
    raw = orjson.dumps(["n" if cursor.forward else "p", keys])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, sort: tuple[SortKey, ...]) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        direction, keys = orjson.loads(raw)
        if direction not in ("n", "p") or not isinstance(keys, list):
            raise ValueError
        if len(keys) != len(sort) + 2 or not all(isinstance(k, str) for k in keys[-2:]):
            raise ValueError
        typed = [_cursor_value(key, value) for key, value in zip(sort, keys, strict=False)]
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise InvalidSearch(
            "_cursor is not a page token of this search", expression=["_cursor"]
        ) from exc
    return Cursor(direction == "n", (*typed, keys[-2], keys[-1]))


def _cursor_value(key: SortKey, value: Any) -> Any:
    if value is None:
        return None
    if key.type in ("date", "lastUpdated"):
        return datetime.fromisoformat(value)
    if key.type in ("number", "quantity"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError
        return float(value)
    if not isinstance(value, str):
        raise ValueError
    return value


# -- the parser ----------------------------------------------------------------------------------


class _Parser:
    def __init__(self, registry: Registry, strict: bool, base_url: str, limits: Limits) -> None:
        self.registry = registry
        self.limits = limits
        self.strict = strict
        self.base_url = base_url
        self.warnings: list[str] = []

    def unknown(self, message: str, name: str) -> None:
        if self.strict:
            raise InvalidSearch(message, expression=[name])
        self.warnings.append(message)

    # types -----------------------------------------------------------------------------------

    def types(self, resource_type: str | None, params: list[tuple[str, str]]) -> tuple[str, ...]:
        known = self.registry.types
        if resource_type is not None:
            return (resource_type,)
        wanted = [t for name, value in params if name == "_type" for t in value.split(",") if t]
        if not wanted:
            return known
        unknown = [t for t in wanted if t not in known]
        if unknown:
            raise InvalidSearch(
                f"_type names unknown resource types: {', '.join(unknown)}", expression=["_type"]
            )
        return tuple(dict.fromkeys(wanted))

    # criteria --------------------------------------------------------------------------------

    def criterion(self, name: str, value: str, types: tuple[str, ...]) -> Criterion | None:
        base = name.split(":", 1)[0].split(".", 1)[0]
        if base in _UNSUPPORTED:
            self.unknown(f"Search parameter {base} is not supported", name)
            return None
        if len(types) > 1 and base != "_has":
            # Across types, only the types that define the parameter can match it.
            types = tuple(t for t in types if self.registry.get(t, base) is not None)
            if not types:
                self.unknown(f"Unknown search parameter {base} for the searched types", name)
                return None
        by_type = []
        for res_type in types:
            node = self.node(res_type, name, value, depth=0)
            if node is not None:
                by_type.append((res_type, node))
        return Criterion(name, tuple(by_type)) if by_type else None

    def node(self, res_type: str, name: str, value: str, depth: int) -> Node | None:
        if depth > _MAX_CHAIN:
            raise InvalidSearch(
                f"{name}: chains and _has nest at most {_MAX_CHAIN} levels", expression=[name]
            )
        if name.startswith("_has:"):
            return self.has(res_type, name, value, depth)
        head, dot, rest = name.partition(".")
        code, _, modifier = head.partition(":")
        param = self.registry.get(res_type, code)
        if param is None:
            self.unknown(f"Unknown search parameter {code} for {res_type}", name)
            return None
        if dot:
            return self.chain(res_type, param, modifier or None, rest, value, name, depth)
        return self.test(param, modifier or None, value, name)

    def has(self, res_type: str, name: str, value: str, depth: int) -> Node | None:
        parts = name.split(":", 3)
        if len(parts) != 4 or not all(parts[1:]):
            raise InvalidSearch(
                f"{name}: _has takes _has:Type:reference:parameter", expression=[name]
            )
        _, source, ref_code, inner_name = parts
        if source not in self.registry.types:
            raise InvalidSearch(f"{name}: unknown resource type {source}", expression=[name])
        param = self.registry.get(source, ref_code)
        if param is None or param.type != "reference":
            raise InvalidSearch(
                f"{name}: {source}.{ref_code} is not a reference parameter", expression=[name]
            )
        if param.targets and res_type not in param.targets:
            raise InvalidSearch(
                f"{name}: {source}.{ref_code} never points at {res_type}", expression=[name]
            )
        inner = self.node(source, inner_name, value, depth + 1)
        return None if inner is None else Has(source, param, inner)

    def chain(
        self,
        res_type: str,
        param: SearchParam,
        modifier: str | None,
        rest: str,
        value: str,
        name: str,
        depth: int,
    ) -> Node | None:
        if param.type != "reference":
            raise InvalidSearch(
                f"{name}: only reference parameters can be chained", expression=[name]
            )
        if modifier:
            if modifier not in self.registry.types:
                raise InvalidSearch(f"{name}: unknown resource type {modifier}", expression=[name])
            candidates: tuple[str, ...] = (modifier,)
        else:
            candidates = param.targets or self.registry.types
        inner_code = rest.split(".", 1)[0].split(":", 1)[0]
        targets = []
        for target in candidates:
            if inner_code.startswith("_has") or self.registry.get(target, inner_code) is not None:
                inner = self.node(target, rest, value, depth + 1)
                if inner is not None:
                    targets.append((target, inner))
        if not targets:
            raise InvalidSearch(
                f"{name}: no target of {res_type}.{param.code} has a search parameter {inner_code}",
                expression=[name],
            )
        return Chain(param, tuple(targets))

    def test(self, param: SearchParam, modifier: str | None, value: str, name: str) -> Node | None:
        if not param.supported:
            self.unknown(f"Search parameter {param.code} ({param.type}) is not supported", name)
            return None
        if modifier == "missing":
            if value not in ("true", "false"):
                raise InvalidSearch(f"{name}: :missing takes true or false", expression=[name])
            return Test(param, "missing", (), missing=value == "true")
        if param.type == "reference" and modifier and modifier[:1].isupper():
            if modifier not in self.registry.types:
                raise InvalidSearch(f"{name}: unknown resource type {modifier}", expression=[name])
        elif modifier is not None and modifier not in _MODIFIERS[param.type]:
            raise InvalidSearch(
                f"{name}: modifier :{modifier} is not supported on {param.type} parameters",
                expression=[name],
            )
        if param.type == "composite":
            return self.composite(param, value, name)
        parts = self.split(value, name)
        parsed = tuple(self.value(param, modifier, part, name) for part in parts)
        return Test(param, modifier, parsed)

    def split(self, value: str, name: str) -> list[str]:
        parts = split_values(value)
        self.limits.check(len(parts), "search_max_values", f"Values of {name}", name)
        return parts

    def composite(self, param: SearchParam, value: str, name: str) -> Node:
        # Only composites over the resource itself (e.g. Observation code-value-quantity): their
        # components can then be matched as separate parameters of the same resource.
        if param.expression != param.resource_type:
            raise InvalidSearch(
                f"{name}: this composite parameter is not supported", expression=[name]
            )
        components = [self.registry.component_param(param, url) for url, _ in param.components]
        if not components or any(c is None or not c.supported for c in components):
            raise InvalidSearch(
                f"{name}: this composite parameter is not supported", expression=[name]
            )
        alternatives: list[Node] = []
        for alternative in self.split(value, name):
            parts = _split_unescaped(alternative, "$")
            if len(parts) != len(components):
                raise InvalidSearch(
                    f"{name}: expected {len(components)} $-separated parts", expression=[name]
                )
            tests: list[Node] = []
            for component, part in zip(components, parts, strict=True):
                assert component is not None
                tests.append(Test(component, None, (self.value(component, None, part, name),)))
            alternatives.append(AllOf(tuple(tests)))
        return AnyOf(tuple(alternatives))

    # values ----------------------------------------------------------------------------------

    def value(self, param: SearchParam, modifier: str | None, raw: str, name: str) -> Value:
        try:
            if param.type in _ORDERED_TYPES:
                return _ordered_value(param.type, raw, param.code)
            if param.type == "string":
                text = _unescape(raw)
                return StringValue(text[: v.STRING_LEN], v.normalize(text)[: v.STRING_LEN])
            if param.type == "token" or modifier == "identifier":
                return _token_value(raw, modifier)
            if param.type == "reference":
                return self.reference_value(param, modifier, _unescape(raw))
            if param.type == "uri":
                return UriValue(_unescape(raw)[: v.URI_LEN])
        except ValueError as exc:
            raise InvalidSearch(f"{name}: {exc}", expression=[name]) from exc
        raise InvalidSearch(
            f"{name}: parameter type {param.type} is not supported", expression=[name]
        )

    def reference_value(self, param: SearchParam, modifier: str | None, raw: str) -> ReferenceValue:
        forced = (modifier,) if modifier else ()
        text = raw.split("|", 1)[0]
        if self.base_url and text.startswith(self.base_url + "/"):
            text = text[len(self.base_url) + 1 :]
        if "://" in text or text.startswith("urn:"):
            return ReferenceValue((), None, text[: v.URI_LEN])
        rtype, rid = v.split_reference(text)
        if rtype is None:
            if "/" in text or not text:
                raise ValueError(f"{raw!r} is not a reference (id, Type/id or a URL)")
            return ReferenceValue(forced, text[: v.ID_LEN], None)
        if forced and rtype != modifier:
            raise ValueError(f"{raw!r} is not a {modifier} reference")
        if rtype not in self.registry.types:
            raise ValueError(f"unknown resource type {rtype}")
        return ReferenceValue((rtype,), (rid or "")[: v.ID_LEN], None)

    # result parameters -----------------------------------------------------------------------

    def result_param(
        self, name: str, value: str, types: tuple[str, ...], state: dict[str, Any], max_count: int
    ) -> None:
        base, _, modifier = name.partition(":")
        if base == "_count":
            count = whole_number(value, ceiling=max_count)
            if count is None:
                raise InvalidSearch("_count must be a non-negative integer", expression=["_count"])
            state["count"] = count
        elif base == "_sort":
            state["sort"] = self.sort(value, types)
        elif base == "_total":
            if value not in TOTAL_MODES:
                raise InvalidSearch(
                    "_total takes accurate, estimate or none", expression=["_total"]
                )
            state["total"] = value
        elif base == "_summary":
            if value not in SUMMARY_MODES:
                raise InvalidSearch(
                    "_summary takes true, false, text, data or count", expression=["_summary"]
                )
            state["summary"] = None if value == "false" else value
        elif base == "_elements":
            names = [e.strip().split(".")[-1] for e in value.split(",") if e.strip()]
            state["elements"] = tuple(dict.fromkeys(names))
        elif base == "_cursor":
            state["cursor_token"] = value
        elif base in ("_include", "_revinclude"):
            state["includes"].append(self.include(base, modifier, value, types))

    def sort(self, value: str, types: tuple[str, ...]) -> tuple[SortKey, ...]:
        keys = []
        items = value.split(",")
        self.limits.check(len(items), "search_max_sort_keys", "Keys of _sort", "_sort")
        for item in items:
            item = item.strip()
            if not item:
                continue
            descending = item.startswith("-")
            code = item.lstrip("-")
            if code == "_id":
                keys.append(SortKey(code, descending, "id"))
                continue
            if code == "_lastUpdated":
                keys.append(SortKey(code, descending, "lastUpdated"))
                continue
            ptypes = {p.type for t in types if (p := self.registry.get(t, code)) is not None}
            if len(ptypes) != 1 or not ptypes <= _SORTABLE:
                raise InvalidSearch(f"_sort: cannot sort by {code}", expression=["_sort"])
            keys.append(SortKey(code, descending, ptypes.pop()))
        return tuple(keys)

    def include(self, base: str, modifier: str, value: str, types: tuple[str, ...]) -> Include:
        if modifier not in ("", "iterate", "recurse"):
            raise InvalidSearch(f"{base}:{modifier} is not supported", expression=[base])
        iterate = modifier in ("iterate", "recurse")
        if value == "*":
            return Include("*", None, None, iterate, base == "_revinclude")
        parts = value.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise InvalidSearch(
                f"{base} takes Type:parameter[:targetType], not {value!r}", expression=[base]
            )
        source, code = parts[0], parts[1]
        target = parts[2] if len(parts) == 3 else None
        if source not in self.registry.types or (target and target not in self.registry.types):
            raise InvalidSearch(f"{base}: unknown resource type in {value!r}", expression=[base])
        if code != "*":
            param = self.registry.get(source, code)
            if param is None or param.type != "reference":
                raise InvalidSearch(
                    f"{base}: {source}.{code} is not a reference parameter", expression=[base]
                )
        return Include(
            source, None if code == "*" else code, target, iterate, base == "_revinclude"
        )


def _prefix(raw: str) -> tuple[str, str]:
    if raw[:2] in PREFIXES and len(raw) > 2 and not raw[2].isalpha():
        return raw[:2], raw[2:]
    return "eq", raw


def _ordered_value(ptype: str, raw: str, code: str) -> Value:
    prefix, rest = _prefix(raw.strip())
    if ptype == "date":
        try:
            start, end = v.date_range(rest)
        except OverflowError as exc:
            raise ValueError(f"{rest!r} is out of range") from exc
        return DateValue(prefix, start, end)
    if ptype == "number":
        value, low, high = v.number_range(rest)
        return NumberValue(prefix, float(value), float(low), float(high))
    parts = _split_unescaped(rest, "|")
    if len(parts) not in (1, 3):
        raise ValueError(f"{raw!r} is not number|system|code")
    value, low, high = v.number_range(parts[0])
    system = _unescape(parts[1]) or None if len(parts) == 3 else None
    unit = _unescape(parts[2]) or None if len(parts) == 3 else None
    return NumberValue(prefix, float(value), float(low), float(high), system, unit, len(parts) == 3)


def _token_value(raw: str, modifier: str | None) -> TokenValue:
    if modifier == "text":
        return TokenValue(None, v.normalize(_unescape(raw))[: v.STRING_LEN], False)
    parts = _split_unescaped(raw, "|")
    if len(parts) == 1:
        return TokenValue(None, _unescape(parts[0])[: v.TOKEN_CODE_LEN], False)
    if len(parts) == 2:
        system = _unescape(parts[0])[: v.TOKEN_SYSTEM_LEN] or None
        code = _unescape(parts[1])[: v.TOKEN_CODE_LEN] or None
        if system is None and code is None:
            raise ValueError("a token needs a system or a code")
        return TokenValue(system, code, True)
    raise ValueError(f"{raw!r} is not [system|]code")
