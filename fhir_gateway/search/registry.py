"""Search parameters per resource type, from the official R4 SearchParameter definitions.

The shipped subset (``fhir_gateway/data/search-parameters.json``) and the gateway's own
(``search-parameters-gateway.json``) are loaded once; a SearchParameter
resource stored through the API counts once its transaction commits, in every process
(``store/search_parameters.py`` keeps the registry at the database's version; ``reindex`` rebuilds
the index for data stored before). Each parameter keeps only the part of its FHIRPath expression that applies to its
resource type, compiled lazily and once with ``fhirpathpy.compile``.

fhirpathpy has no ``resolve()``: we give it one that turns a Reference into a typed stub node, so
the official ``X.where(resolve() is Patient)`` keeps the references of that type only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import fhirpathpy
import orjson
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models as fhirpath_models

from fhir_gateway.fhir.fhirpath_text import split_top_level
from fhir_gateway.fhir.types import RESOURCE_TYPES
from fhir_gateway.search.compiled import Getter, compile_getter

__all__ = [
    "SearchParam",
    "Registry",
    "get_registry",
    "COMMON_BASES",
    "split_union",
    "reference_type",
]

COMMON_BASES = ("Resource", "DomainResource")
SUPPORTED_TYPES = frozenset(
    {"string", "token", "reference", "date", "number", "quantity", "uri", "composite"}
)
_ROOT = re.compile(r"^\(*\s*([A-Za-z]+)")
_MODEL = fhirpath_models["r4"]
_DATA = Path(__file__).resolve().parent.parent / "data"

Evaluator = Callable[[Mapping[str, Any]], list[Any]]


def reference_type(reference: str) -> str | None:
    """The resource type a literal reference points at (``Type/id``, absolute, or versioned)."""
    if not reference or reference.startswith("#") or reference.startswith("urn:"):
        return None
    parts = reference.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    return parts[-2] if len(parts) >= 2 else None


def _resolve(inputs: list[Any]) -> list[Any]:
    # A stub node typed by the reference: enough for `resolve() is Patient` and `ofType(...)`.
    out = []
    for item in inputs:
        ref = item.get("reference") if isinstance(item, Mapping) else None
        rtype = reference_type(ref) if isinstance(ref, str) else None
        if rtype:
            out.append(ResourceNode.create_node({"resourceType": rtype}, rtype))
    return out


_OPTIONS = {
    "userInvocationTable": {"resolve": {"fn": _resolve, "arity": {0: []}}},
    "returnRawData": True,  # keep the nodes' FHIR types (Period, Identifier, …) for extraction
}


@cache
def _compile(expression: str) -> Evaluator:
    return fhirpathpy.compile(expression, model=_MODEL, options=_OPTIONS)  # type: ignore[return-value]


def split_union(expression: str) -> list[str]:
    """Split a FHIRPath expression on its top-level ``|`` operators (one part if its brackets
    or literals do not pair up: the FHIRPath engine reports that)."""
    parts = split_top_level(expression, "|") or [expression]
    return [part.strip() for part in parts if part.strip()]


def _expression_for(expression: str | None, res_type: str) -> str | None:
    """The parts of a (possibly multi-type) expression that start at ``res_type``."""
    if not expression:
        return None
    kept = []
    for part in split_union(expression):
        match = _ROOT.match(part)
        root = match.group(1) if match else ""
        if root in COMMON_BASES:
            # Rooted at the concrete type so fhirpathpy's model resolves choice types.
            kept.append(part.replace(root, res_type, 1))
        elif root == res_type:
            kept.append(part)
    return " | ".join(kept) or None


@dataclass(frozen=True, slots=True)
class SearchParam:
    """One search parameter as it applies to one resource type."""

    code: str
    type: str
    resource_type: str
    expression: str | None
    url: str = ""
    targets: tuple[str, ...] = field(default=(), repr=False)
    modifiers: tuple[str, ...] = ()
    comparators: tuple[str, ...] = ()
    components: tuple[tuple[str, str], ...] = ()  # (definition url, relative expression)
    _evaluator: list[Evaluator] = field(default_factory=list, compare=False, repr=False)
    _getter: list[Getter | None] = field(default_factory=list, compare=False, repr=False)

    @property
    def supported(self) -> bool:
        return self.type in SUPPORTED_TYPES and self.expression is not None

    def evaluate(self, resource: Mapping[str, Any]) -> list[Any]:
        """FHIRPath nodes (``ResourceNode`` keeps their FHIR type) this parameter indexes."""
        if self.expression is None:
            return []
        if not self._evaluator:
            self._evaluator.append(_compile(self.expression))
        return self._evaluator[0](resource)

    def compiled(self) -> Getter | None:
        """The expression as a plain Python getter (``search/compiled.py``), or None when it is
        outside the compiled subset and only fhirpathpy evaluates it."""
        if not self._getter:
            expression = self.expression
            self._getter.append(compile_getter(expression, reference_type) if expression else None)
        return self._getter[0]


def _params_from(definition: Mapping[str, Any], types: Iterable[str]) -> list[SearchParam]:
    bases = definition.get("base") or []
    if any(b in COMMON_BASES for b in bases):
        bases = list(types) if "Resource" in bases else [t for t in types if t != "Bundle"]
    out = []
    for res_type in bases:
        out.append(
            SearchParam(
                code=definition["code"],
                type=definition["type"],
                resource_type=res_type,
                expression=_expression_for(definition.get("expression"), res_type),
                url=definition.get("url", ""),
                targets=tuple(definition.get("target") or ()),
                modifiers=tuple(definition.get("modifier") or ()),
                comparators=tuple(definition.get("comparator") or ()),
                components=tuple(
                    (c.get("definition", ""), c.get("expression", ""))
                    for c in definition.get("component") or ()
                ),
            )
        )
    return out


class Registry:
    """Search parameters by resource type and code."""

    def __init__(self, definitions: Iterable[Mapping[str, Any]], types: Iterable[str]) -> None:
        self._types = tuple(types)
        self._builtin = tuple(definitions)
        self._by_type: dict[str, dict[str, SearchParam]] = {t: {} for t in self._types}
        self._by_url: dict[str, Mapping[str, Any]] = {}
        self.version = 0  # counts changes, for caches of what applies to a type (search/extract)
        for definition in self._builtin:
            self.add(definition)

    def replace_stored(self, stored: Iterable[Mapping[str, Any]]) -> None:
        """The built-in definitions plus ``stored`` (the SearchParameters in the database), swapped
        in at once so that a search running meanwhile sees either the old set or the new one."""
        fresh = Registry(self._builtin, self._types)
        for definition in stored:
            try:
                fresh.add(definition)
            except (ValueError, KeyError, TypeError):
                continue  # refused when it was written; a stored one that no longer parses is skipped
        self._by_type, self._by_url = fresh._by_type, fresh._by_url
        self.version += 1

    def check(self, definition: Mapping[str, Any]) -> None:
        """Raise ValueError/KeyError/TypeError when ``definition`` could not be registered."""
        Registry((), self._types).add(definition)

    @property
    def types(self) -> tuple[str, ...]:
        return self._types

    def add(self, definition: Mapping[str, Any]) -> list[SearchParam]:
        """Register a SearchParameter resource (replacing one with the same base and code)."""
        if definition.get("resourceType") != "SearchParameter" or not definition.get("code"):
            raise ValueError("not a SearchParameter with a code")
        added = []
        for param in _params_from(definition, self._types):
            if param.resource_type in self._by_type:
                self._by_type[param.resource_type][param.code] = param
                added.append(param)
        if definition.get("url"):
            self._by_url[definition["url"]] = definition
        self.version += 1
        return added

    def remove(self, definition: Mapping[str, Any]) -> None:
        """Forget a SearchParameter added with :meth:`add` (built-in ones are not restored)."""
        for param in _params_from(definition, self._types):
            self._by_type.get(param.resource_type, {}).pop(param.code, None)
        self._by_url.pop(definition.get("url", ""), None)
        self.version += 1

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        return self._by_type.get(resource_type, {}).get(code)

    def for_type(self, resource_type: str) -> Mapping[str, SearchParam]:
        return self._by_type.get(resource_type, {})

    def params_for(self, resource_type: str) -> list[SearchParam]:
        """The parameters a search on ``resource_type`` really supports."""
        return [p for p in self.for_type(resource_type).values() if p.supported]

    def revincludes_for(self, resource_type: str) -> list[str]:
        """``Source:param`` of every reference parameter that can point at ``resource_type``."""
        return [
            f"{source}:{p.code}"
            for source, params in self._by_type.items()
            for p in params.values()
            if p.type == "reference" and p.supported and resource_type in p.targets
        ]

    def by_url(self, url: str) -> Mapping[str, Any] | None:
        return self._by_url.get(url)

    def component_param(self, param: SearchParam, url: str) -> SearchParam | None:
        """The parameter a composite component's definition url names, on the same type."""
        definition = self._by_url.get(url)
        if definition is None:
            return None
        return self.get(param.resource_type, definition["code"])


# The official R4 definitions, then the gateway's own (parameters R4 lacks, e.g. a referral's
# deadline, ``Task?due-date=``); changing the second file means a reindex of the types it names.
_DEFINITION_FILES = ("search-parameters.json", "search-parameters-gateway.json")


def _load_definitions() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name in _DEFINITION_FILES:
        bundle = orjson.loads(_DATA.joinpath(name).read_bytes())
        out += [entry["resource"] for entry in bundle.get("entry", [])]
    return out


@cache
def get_registry() -> Registry:
    """The process-wide registry (built-in definitions plus any added at run time)."""
    return Registry(_load_definitions(), RESOURCE_TYPES)
