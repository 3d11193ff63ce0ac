"""Paths into a resource, as the FHIRPath Patch walks them: what the R4B models say about each
element, and a path evaluator that returns locations (where a value sits), not values."""

from __future__ import annotations

import functools
import re
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir_core.types import FhirBase
from fhirpathpy import compile as fhirpath_compile

from fhir_gateway.fhir.fhirpath_text import closing
from fhir_gateway.fhir.patch._values import _Fail, _Syntax

# --------------------------------------------------------------------------------------------
# What the R4B models say about elements: does it repeat, what type is it, which choice variants
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Field:
    repeats: bool
    model: type | None  # the R4B class of the element, None for primitives


@dataclass(frozen=True, slots=True)
class _Shape:
    fields: dict[str, _Field]  # by JSON name, choice variants included (valueQuantity)
    choices: dict[str, tuple[str, ...]]  # choice base → its JSON names (value → valueQuantity, …)


@functools.cache
def _model_for_type(resource_type: str) -> type | None:
    try:
        return typing.cast(type, get_fhir_model_class(resource_type))
    except (KeyError, ValueError, AttributeError, ImportError):
        return None


@functools.cache
def _shape(model: type) -> _Shape:
    """Element facts of one R4B class, cached: every (type, path) question reduces to this."""
    fields: dict[str, _Field] = {}
    choices: dict[str, list[str]] = {}
    for info in model.model_fields.values():  # type: ignore[attr-defined]
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if not extra.get("element_property") or not info.alias:
            continue
        repeats, element_model = _unwrap(info.annotation)
        fields[info.alias] = _Field(repeats, element_model)
        base = extra.get("one_of_many")
        if isinstance(base, str):
            choices.setdefault(base, []).append(info.alias)
    return _Shape(fields, {base: tuple(names) for base, names in choices.items()})


def _unwrap(annotation: Any) -> tuple[bool, type | None]:
    """Optional[List[Annotated[X, …]]] → (repeats, R4B class of X or None for primitives)."""
    repeats = False
    while True:
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is typing.Union or origin is types.UnionType:
            rest = [a for a in args if a is not type(None)]
            if len(rest) != 1:
                return repeats, None
            annotation = rest[0]
        elif origin is list:
            repeats, annotation = True, args[0]
        elif origin is typing.Annotated:
            annotation = args[0]
        else:
            break
    if isinstance(annotation, type) and issubclass(annotation, FhirBase):
        return repeats, annotation.get_model_klass()
    return repeats, None


def _model_of(value: Any, declared: type | None) -> type | None:
    # A contained or Bundle.entry resource is typed by its own resourceType, not by the field.
    if isinstance(value, dict) and isinstance(value.get("resourceType"), str):
        return _model_for_type(value["resourceType"])
    return declared


def _resolve_name(model: type | None, name: str, suffix: str | None) -> tuple[str, _Field | None]:
    """The JSON key an element `name` takes in `model` (choices get the value's type suffix)."""
    if model is None:
        return name, None
    shape = _shape(model)
    if name in shape.choices:
        if suffix is None:
            raise _Fail(f"'{name}' is a choice element: give the value as value[x] to pick a type")
        key = name + suffix
        if key not in shape.fields:
            raise _Fail(f"'{name}' cannot be of type {suffix}")
        return key, shape.fields[key]
    if name in shape.fields:
        return name, shape.fields[name]
    raise _Fail(f"{model.__name__} has no element '{name}'")


# --------------------------------------------------------------------------------------------
# FHIRPath Patch: a path evaluator that returns locations, not values
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Loc:
    """Where a value sits: container[key], or container[key][index] for a list item."""

    value: Any
    container: dict[str, Any] | None  # None for the resource itself
    key: str
    index: int | None
    model: type | None  # the R4B class of value (None for primitives)
    owner: type | None  # the R4B class of container
    choice: str | None  # the choice base when key is a variant (valueQuantity → value)


@dataclass(frozen=True, slots=True)
class _Step:
    kind: str  # "name" | "index" | "where" | "first" | "last"
    name: str = ""
    number: int = 0
    predicate: Callable[[Any], Any] | None = None


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|`[^`]+`")
_INDEXER = re.compile(r"\[\s*([0-9]+)\s*\]")


@functools.lru_cache(maxsize=512)
def _parse_path(path: str) -> tuple[_Step, ...]:
    text = path.strip()
    steps: list[_Step] = []
    pos = 0
    expect_name = True
    while pos < len(text):
        if expect_name:
            step, pos = _parse_name_or_call(text, pos)
            steps.append(step)
            expect_name = False
        elif text[pos] == ".":
            pos, expect_name = pos + 1, True
        elif match := _INDEXER.match(text, pos):
            steps.append(_Step("index", number=int(match.group(1))))
            pos = match.end()
        else:
            raise _Syntax(f"unexpected {text[pos]!r} at position {pos}")
    if expect_name or steps[0].kind != "name":
        raise _Syntax("a path is Type or Type.element… with optional where(), [n], first(), last()")
    return tuple(steps)


def _parse_name_or_call(text: str, pos: int) -> tuple[_Step, int]:
    match = _IDENTIFIER.match(text, pos)
    if match is None:
        raise _Syntax(f"expected an element name at position {pos}")
    name, pos = match.group(0).strip("`"), match.end()
    if pos >= len(text) or text[pos] != "(":
        return _Step("name", name=name), pos
    end = _closing_paren(text, pos)
    argument = text[pos + 1 : end].strip()
    if name == "where" and argument:
        return _Step("where", predicate=_compile_predicate(argument)), end + 1
    if name in ("first", "last") and not argument:
        return _Step(name), end + 1
    raise _Syntax(f"unsupported function {name}({argument}): use where(…), first(), last()")


def _closing_paren(text: str, start: int) -> int:
    end = closing(text, start)
    if end is None:
        raise _Syntax("unbalanced parentheses")
    return end


# A plain string literal (no escapes), which a where() predicate can take as a variable.
_STRING_LITERAL = re.compile(r"'([^'\\]*)'")


def _compile_predicate(expression: str) -> Callable[[Any], Any]:
    """The where() predicate, parsed once per shape: predicates that differ only in their
    string literals (the identifier a message matches on, a UUID per message) share one parse,
    the literals given as %variables. Anything the rewrite could change is parsed as it is.
    What the HL7 v2 mapping's patches use (``_simple_predicate``) is tested in Python."""
    general = _general_predicate(expression)
    return _simple_predicate(expression, general) or general


# The shapes of where() the HL7 v2 mapping's patches take: ``a.b = 'text'`` and ``a.empty()``
# terms, joined by one kind of ``and``/``or`` (``status = 'active' or location.x = 'y'``).
_NAME = r"[a-z][A-Za-z0-9]*"
_TERM = re.compile(rf"\s*({_NAME}(?:\.{_NAME})*)\s*(?:=\s*'([^'\\%]*)'|\.empty\(\))\s*")
_JOIN = re.compile(r"\s(and|or)\s")
_KEYWORDS = frozenset(  # FHIRPath's own words: `true = 'x'` compares a literal, not an element
    {"true", "false", "and", "or", "xor", "implies", "div", "mod", "in", "contains", "is", "as"}
)
_UNDECIDED = object()  # a shape the Python test does not decide: fhirpathpy does


def _simple_predicate(
    expression: str, general: Callable[[Any], Any]
) -> Callable[[Any], Any] | None:
    joins = set(_JOIN.findall(expression))
    if len(joins) > 1:
        return None
    terms = []
    for text in _JOIN.split(expression)[::2]:
        match = _TERM.fullmatch(text)
        if match is None or _KEYWORDS.intersection(match.group(1).split(".")):
            return None
        terms.append((tuple(match.group(1).split(".")), match.group(2)))
    join = joins.pop() if joins else "and"

    def predicate(value: Any) -> Any:
        results = [_term(value, path, text) for path, text in terms]
        if _UNDECIDED in results:
            return general(value)
        return _joined(join, results)

    return predicate


def _term(value: Any, path: tuple[str, ...], text: str | None) -> Any:
    """``path = 'text'`` (``text`` None: ``path.empty()``) on one item, as FHIRPath answers
    it: a string compared exactly, an empty collection compared is empty; other shapes (a
    number, several items, a primitive's extension) are undecided here."""
    items = [value]
    for name in path:
        found: list[Any] = []
        for item in items:
            if not isinstance(item, dict) or f"_{name}" in item:
                return _UNDECIDED
            child = item.get(name)
            if isinstance(child, list):
                found.extend(child)
            elif child is not None:
                found.append(child)
        items = found
    if text is None:
        return [not items] if all(isinstance(i, str | dict) and i for i in items) else _UNDECIDED
    if not items:
        return []
    if len(items) == 1 and isinstance(items[0], str):
        return [items[0] == text]
    return _UNDECIDED


def _joined(join: str, results: list[list[bool]]) -> list[bool]:
    """FHIRPath's three-valued ``and``/``or`` over the terms' answers ([] is unknown)."""
    decided = [r[0] for r in results if r]
    if join == "or":
        if any(decided):
            return [True]
        return [False] if len(decided) == len(results) else []
    if not all(decided):
        return [False]
    return [True] if len(decided) == len(results) else []


def _general_predicate(expression: str) -> Callable[[Any], Any]:
    literals: list[str] = []

    def to_variable(match: re.Match[str]) -> str:
        literals.append(match.group(1))
        return f"%literal{len(literals) - 1}"

    template = _STRING_LITERAL.sub(to_variable, expression)
    # Our own %variables, escapes, backquoted names, a quote left over or a comment: as it is.
    if not literals or any(c in expression for c in '%\\"`') or any(c in template for c in "'/"):
        return _compiled(expression, expression)
    compiled = _compiled(template, expression)
    variables = {f"literal{number}": text for number, text in enumerate(literals)}
    return lambda value: compiled(value, variables)


def _compiled(text: str, expression: str) -> Callable[..., Any]:
    try:
        return _parsed(text)
    except Exception as exc:  # fhirpathpy raises bare Exception for syntax errors
        raise _Syntax(f"invalid where() expression {expression!r}: {exc}") from None


@functools.lru_cache(maxsize=256)
def _parsed(text: str) -> Callable[..., Any]:
    return typing.cast(Callable[..., Any], fhirpath_compile(text))


def _evaluate(resource: dict[str, Any], steps: tuple[_Step, ...]) -> list[_Loc]:
    root_type = resource.get("resourceType")
    root = _Loc(resource, None, "", None, _model_of(resource, None), None, None)
    first = steps[0] if steps else None
    if first is not None and first.name[:1].isupper():
        # FHIR element names start lower-case, so a capitalised head names the resource type.
        if first.name not in (root_type, "Resource", "DomainResource"):
            raise _Fail(f"the path is for {first.name}, the resource is a {root_type}")
        steps = steps[1:]
    locations = [root]
    for step in steps:
        locations = _apply_step(locations, step)
    return locations


def _apply_step(locations: list[_Loc], step: _Step) -> list[_Loc]:
    if step.kind == "name":
        return [child for loc in locations for child in _children(loc, step.name)]
    if step.kind == "index":
        return locations[step.number : step.number + 1]
    if step.kind == "first":
        return locations[:1]
    if step.kind == "last":
        return locations[-1:]
    assert step.predicate is not None
    return [loc for loc in locations if _holds(step.predicate, loc.value)]


def _holds(predicate: Callable[[Any], Any], value: Any) -> bool:
    try:
        return bool(predicate(value) == [True])
    except Exception as exc:  # fhirpathpy raises bare Exception at run time too
        raise _Fail(f"where() could not be evaluated: {exc}") from None


def _children(loc: _Loc, name: str) -> Iterator[_Loc]:
    obj = loc.value
    if not isinstance(obj, dict):
        return  # a primitive has no child elements: an empty collection, as in FHIRPath
    key, field, choice = name, None, None
    if loc.model is not None:
        shape = _shape(loc.model)
        if name in shape.choices:
            choice = name
            key = next((k for k in shape.choices[name] if k in obj), name)
        elif name not in shape.fields:
            raise _Fail(f"{loc.model.__name__} has no element '{name}'")
        field = shape.fields.get(key)
    if key not in obj:
        return
    declared = field.model if field else None
    value = obj[key]
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield _Loc(item, obj, key, index, _model_of(item, declared), loc.model, choice)
    else:
        yield _Loc(value, obj, key, None, _model_of(value, declared), loc.model, choice)
