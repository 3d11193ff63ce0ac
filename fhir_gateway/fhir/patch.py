"""The two PATCH formats FHIR R4 allows, applied to resource dicts.

* ``apply_json_patch``: JSON Patch (RFC 6902) with JSON Pointers (RFC 6901).
* ``apply_fhirpath_patch``: FHIRPath Patch (http://hl7.org/fhir/R4/fhirpatch.html), a
  ``Parameters`` resource of ``operation`` parts.

Both are pure: they return a new dict and never mutate their arguments. A document that is not a
patch at all raises ``InvalidRequest`` (400); a patch that cannot be applied to this resource raises
``PatchError`` (422) naming the operation (0-based, as in ``Parameters.parameter[n]``) and its path.
FHIR forbids empty objects and arrays, so both remove the ones a patch leaves behind, once, after
the last operation (pruning earlier would make "delete then add" lose the parent it adds to).
The result is not validated here: the caller runs ``validate_resource`` on it.
"""

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

from fhir_gateway.errors import InvalidRequest, PatchError, PayloadTooLarge

__all__ = ["apply_json_patch", "apply_fhirpath_patch", "MAX_COPIED_VALUES"]

# JSON Patch "copy" doubles what it copies: 30 copies of /name into /name/- in a body of 1 KB
# would build a billion values (18 took 4.5 s). What copies may add is bounded (decision 15), as
# request bodies are by max_json_values (the same default).
MAX_COPIED_VALUES = 100_000


class _Fail(Exception):
    """A reason an operation cannot be applied; wrapped into PatchError with the op's context."""


class _Syntax(Exception):
    """A path or part that is malformed; wrapped into InvalidRequest."""


def _copy(value: Any) -> Any:
    """Copy a JSON value (dicts, lists, scalars); much cheaper than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _prune(value: Any) -> bool:
    """Remove empty objects and arrays below ``value``; True if ``value`` itself is now empty."""
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if _prune(v)]:
            del value[key]
        return not value
    if isinstance(value, list):
        value[:] = [v for v in value if not _prune(v)] if not _all_null(value) else []
        return not value
    return False


def _all_null(items: list[Any]) -> bool:
    # A primitive-extension array (`_given`) can keep nulls as placeholders, but not only nulls.
    return all(item is None for item in items)


# --------------------------------------------------------------------------------------------
# JSON Patch (RFC 6902)
# --------------------------------------------------------------------------------------------

_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")
_BAD_ESCAPE = re.compile(r"~(?![01])")
_MISSING: Any = object()


def apply_json_patch(
    resource: dict[str, Any], operations: list[Any], *, max_copied: int = MAX_COPIED_VALUES
) -> dict[str, Any]:
    """Apply an RFC 6902 JSON Patch to ``resource`` and return the patched copy; 413 if its
    copy operations would add more than ``max_copied`` values."""
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise InvalidRequest("A JSON Patch document must be a JSON array of operation objects")
    doc: Any = _copy(resource)
    copied = 0
    for index, op in enumerate(operations):
        if op.get("op") == "copy":
            copied += _values_to_copy(doc, op, max_copied - copied)
            if copied > max_copied:
                raise PayloadTooLarge(
                    f"JSON Patch operation {index} (copy): the copies would add more than "
                    f"{max_copied} values (limit max_json_values)"
                )
        doc = _apply_json_op(doc, op, index, resource.get("resourceType", ""))
    if not isinstance(doc, dict):
        raise PatchError("The JSON Patch did not leave a JSON object (a resource)")
    _prune(doc)
    return typing.cast(dict[str, Any], doc)


def _values_to_copy(doc: Any, op: dict[str, Any], allowed: int) -> int:
    """How many values a copy would add, counted no further than just past ``allowed``."""
    try:
        pending = [_get(doc, _from_member(op))]
    except _Fail:
        return 0  # the operation itself reports the bad pointer
    count = 0
    while pending and count <= allowed:
        value = pending.pop()
        count += 1
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return count


def _apply_json_op(doc: Any, op: dict[str, Any], index: int, resource_type: str) -> Any:
    name, path = op.get("op"), op.get("path")
    try:
        if not isinstance(path, str):
            raise _Fail("member 'path' is missing or not a string")
        handler = _JSON_OPS.get(name) if isinstance(name, str) else None
        if handler is None:
            raise _Fail(f"unknown op {name!r} (expected add, remove, replace, move, copy or test)")
        return handler(doc, _parse_pointer(path), op)
    except _Fail as exc:
        where = f"{name} {path}" if isinstance(path, str) else str(name)
        expression = [_pointer_to_fhirpath(resource_type, path)] if isinstance(path, str) else None
        raise PatchError(
            f"JSON Patch operation {index} ({where}): {exc}", expression=expression
        ) from None


def _parse_pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise _Fail(f"JSON Pointer {pointer!r} must be empty or start with '/'")
    if _BAD_ESCAPE.search(pointer):
        raise _Fail(f"JSON Pointer {pointer!r} has a '~' not followed by 0 or 1")
    # ~1 before ~0, so that "~01" decodes to "~1" and not to "/" (RFC 6901 section 4).
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _pointer_to_fhirpath(resource_type: str, pointer: str) -> str:
    """`/name/0/given` → `Patient.name[0].given`, for OperationOutcome.issue.expression."""
    out = resource_type or "Resource"
    try:
        tokens = _parse_pointer(pointer)
    except _Fail:
        return out
    for token in tokens:
        if _ARRAY_INDEX.fullmatch(token):
            out += f"[{token}]"
        elif token != "-":
            out += f".{token}"
    return out


def _array_index(token: str, length: int, *, for_insert: bool) -> int:
    if for_insert and token == "-":
        return length
    if not _ARRAY_INDEX.fullmatch(token):
        raise _Fail(f"{token!r} is not an array index")
    position = int(token)
    if position > length or (position == length and not for_insert):
        raise _Fail(f"array index {position} is out of range (array has {length} items)")
    return position


def _get(doc: Any, tokens: list[str]) -> Any:
    value = doc
    for depth, token in enumerate(tokens):
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif isinstance(value, list):
            value = value[_array_index(token, len(value), for_insert=False)]
        else:
            raise _Fail(f"path not found at '{_join(tokens[: depth + 1])}'")
    return value


def _join(tokens: list[str]) -> str:
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


def _json_add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _get(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(last, len(parent), for_insert=True), value)
    else:
        raise _Fail(f"cannot add to '{_join(tokens[:-1])}': it is not an object or array")
    return doc


def _json_remove(doc: Any, tokens: list[str]) -> tuple[Any, Any]:
    """Remove the target; returns (doc, removed value)."""
    if not tokens:
        raise _Fail("cannot remove the whole document")
    parent = _get(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_array_index(last, len(parent), for_insert=False))
    raise _Fail("path not found")


def _value_member(op: dict[str, Any]) -> Any:
    if "value" not in op:
        raise _Fail("member 'value' is missing")
    return _copy(op["value"])


def _from_member(op: dict[str, Any]) -> list[str]:
    source = op.get("from")
    if not isinstance(source, str):
        raise _Fail("member 'from' is missing or not a string")
    return _parse_pointer(source)


def _op_add(doc: Any, tokens: list[str], op: dict[str, Any]) -> Any:
    return _json_add(doc, tokens, _value_member(op))


def _op_remove(doc: Any, tokens: list[str], op: dict[str, Any]) -> Any:
    return _json_remove(doc, tokens)[0]


def _op_replace(doc: Any, tokens: list[str], op: dict[str, Any]) -> Any:
    value = _value_member(op)
    if not tokens:
        return value
    _get(doc, tokens)  # the target must exist
    parent = _get(doc, tokens[:-1])
    if isinstance(parent, list):
        parent[_array_index(tokens[-1], len(parent), for_insert=False)] = value
    else:
        parent[tokens[-1]] = value
    return doc


def _op_move(doc: Any, tokens: list[str], op: dict[str, Any]) -> Any:
    source = _from_member(op)
    if tokens[: len(source)] == source and len(tokens) > len(source):
        raise _Fail("cannot move a value into one of its own children")
    doc, value = _json_remove(doc, source)
    return _json_add(doc, tokens, value)


def _op_copy(doc: Any, tokens: list[str], op: dict[str, Any]) -> Any:
    return _json_add(doc, tokens, _copy(_get(doc, _from_member(op))))


def _op_test(doc: Any, tokens: list[str], op: dict[str, Any]) -> Any:
    expected = _value_member(op)
    actual = _get(doc, tokens)
    if not _json_equal(actual, expected):
        raise _Fail(f"test failed: the value is {_short(actual)}, not {_short(expected)}")
    return doc


def _json_equal(a: Any, b: Any) -> bool:
    """RFC 6902 section 4.6 equality: unlike Python's ==, true is not 1 and "1" is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_JSON_OPS: dict[str, Callable[[Any, list[str], dict[str, Any]], Any]] = {
    "add": _op_add,
    "remove": _op_remove,
    "replace": _op_replace,
    "move": _op_move,
    "copy": _op_copy,
    "test": _op_test,
}


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
    depth, quote, pos = 0, "", start
    while pos < len(text):
        char = text[pos]
        if quote:
            if char == "\\":
                pos += 1
            elif char == quote:
                quote = ""
        elif char in "'\"`":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return pos
        pos += 1
    raise _Syntax("unbalanced parentheses")


def _compile_predicate(expression: str) -> Callable[[Any], Any]:
    try:
        return typing.cast(Callable[[Any], Any], fhirpath_compile(expression))
    except Exception as exc:  # fhirpathpy raises bare Exception for syntax errors
        raise _Syntax(f"invalid where() expression {expression!r}: {exc}") from None


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


# --------------------------------------------------------------------------------------------
# FHIRPath Patch: reading the Parameters
# --------------------------------------------------------------------------------------------

_REQUIRED = {
    "add": ("path", "name", "value"),
    "insert": ("path", "value", "index"),
    "delete": ("path",),
    "replace": ("path", "value"),
    "move": ("path", "source", "destination"),
}
_PART_NAMES = frozenset({"type", "path", "name", "value", "index", "source", "destination"})


@dataclass(frozen=True, slots=True)
class _Operation:
    number: int
    type: str
    path: str
    name: str | None
    value: dict[str, Any] | None  # the raw `value` part: value[x], resource, or nested parts
    index: int | None
    source: int | None
    destination: int | None


def _read_operations(parameters: Any) -> list[_Operation]:
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise InvalidRequest("A FHIRPath Patch must be a Parameters resource")
    entries = parameters.get("parameter", [])
    if not isinstance(entries, list):
        raise InvalidRequest("Parameters.parameter must be an array", expression=["Parameters"])
    return [_read_operation(number, entry) for number, entry in enumerate(entries)]


def _read_operation(number: int, entry: Any) -> _Operation:
    try:
        return _parse_operation(number, entry)
    except _Syntax as exc:
        raise InvalidRequest(
            f"FHIRPath Patch operation {number}: {exc}",
            expression=[f"Parameters.parameter[{number}]"],
        ) from None


def _parse_operation(number: int, entry: Any) -> _Operation:
    if not isinstance(entry, dict) or entry.get("name") != "operation":
        raise _Syntax("each parameter must be named 'operation'")
    parts = entry.get("part")
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        raise _Syntax("an operation needs a 'part' array")
    by_name: dict[str, dict[str, Any]] = {}
    for part in parts:
        name = part.get("name")
        if name not in _PART_NAMES:
            raise _Syntax(f"unknown part {name!r}")
        if name in by_name:
            raise _Syntax(f"part '{name}' is given twice")
        by_name[name] = part
    op_type = _scalar(by_name.get("type"), str, ("valueCode", "valueString"))
    if op_type not in _REQUIRED:
        raise _Syntax(f"type must be one of add, insert, delete, replace, move, not {op_type!r}")
    missing = [name for name in _REQUIRED[op_type] if name not in by_name]
    if missing:
        raise _Syntax(f"{op_type} needs the part(s) {', '.join(missing)}")
    if "value" in by_name:
        _value_kind(by_name["value"])
    path = _required_str(by_name, "path")
    try:
        _parse_path(path)  # a malformed path is a 400 even behind an op that fails first
    except _Syntax as exc:
        raise _Syntax(f"path {path!r}: {exc}") from None
    return _Operation(
        number=number,
        type=op_type,
        path=path,
        name=_optional_str(by_name, "name"),
        value=by_name.get("value"),
        index=_optional_int(by_name, "index"),
        source=_optional_int(by_name, "source"),
        destination=_optional_int(by_name, "destination"),
    )


_INT_KEYS = ("valueInteger", "valueUnsignedInt", "valuePositiveInt")


def _scalar(part: dict[str, Any] | None, kind: type, keys: tuple[str, ...]) -> Any:
    if part is None:
        return None
    for key in keys:
        value = part.get(key)
        # bool is an int in Python, never in FHIR
        if isinstance(value, kind) and not isinstance(value, bool):
            return value
    raise _Syntax(f"part '{part.get('name')}' needs one of {', '.join(keys)}")


def _required_str(parts: dict[str, dict[str, Any]], name: str) -> str:
    value = _scalar(parts[name], str, ("valueString",))
    if not value.strip():
        raise _Syntax(f"part '{name}' is empty")
    return typing.cast(str, value)


def _optional_str(parts: dict[str, dict[str, Any]], name: str) -> str | None:
    return _required_str(parts, name) if name in parts else None


def _optional_int(parts: dict[str, dict[str, Any]], name: str) -> int | None:
    return typing.cast(int | None, _scalar(parts.get(name), int, _INT_KEYS))


# --------------------------------------------------------------------------------------------
# FHIRPath Patch: building values
# --------------------------------------------------------------------------------------------


def _build_value(part: dict[str, Any], model: type | None) -> tuple[Any, str | None]:
    """The JSON value of a `value` part and its type suffix (valueIdentifier → "Identifier")."""
    kind = _value_kind(part)
    if kind == "part":
        return _build_complex(part["part"], model), None
    return _copy(part[kind]), _suffix_of(part)


def _value_kind(part: dict[str, Any]) -> str:
    """Which key carries the part's value: a value[x] key, "resource" or "part"."""
    keys = [k for k in part if _is_typed_value(k) or k in ("resource", "part")]
    if len(keys) != 1:
        raise _Syntax(f"part '{part.get('name')}' needs exactly one value[x], resource or part")
    return keys[0]


def _is_typed_value(key: str) -> bool:
    return key.startswith("value") and len(key) > 5 and key[5].isupper()


def _build_complex(parts: Any, model: type | None) -> dict[str, Any]:
    """A complex value from nested parts: [{name: system, valueUri}, {name: value, …}]."""
    if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) for p in parts):
        raise _Syntax("a nested 'part' must be a non-empty array of objects")
    names = [p.get("name") for p in parts]
    built: dict[str, Any] = {}
    for part, name in zip(parts, names, strict=True):
        if not isinstance(name, str) or not name:
            raise _Syntax("every nested part needs a name")
        key, field = _resolve_name(model, name, _suffix_of(part))
        value, _ = _build_value(part, field.model if field else None)
        repeats = field.repeats if field else names.count(name) > 1
        if repeats:
            built.setdefault(key, []).append(value)
        elif key in built:
            raise _Fail(f"'{name}' does not repeat but is given twice")
        else:
            built[key] = value
    return built


def _suffix_of(part: dict[str, Any]) -> str | None:
    return next((key[5:] for key in part if _is_typed_value(key)), None)


# --------------------------------------------------------------------------------------------
# FHIRPath Patch: the operations
# --------------------------------------------------------------------------------------------


def apply_fhirpath_patch(resource: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """Apply a FHIRPath Patch (a Parameters resource) to ``resource``; return the patched copy.

    Beyond the letter of the spec, as the gateway's HL7 adapter relies on it: ``delete`` of an
    absent element is a no-op and a ``delete`` matching several elements deletes them all (as
    HAPI does).
    """
    operations = _read_operations(parameters)
    doc = typing.cast(dict[str, Any], _copy(resource))
    for op in operations:
        try:
            _APPLY[op.type](doc, op, _parse_path(op.path))
        except _Syntax as exc:
            raise InvalidRequest(
                f"FHIRPath Patch operation {op.number} ({op.type} {op.path}): {exc}",
                expression=[f"Parameters.parameter[{op.number}]"],
            ) from None
        except _Fail as exc:
            raise PatchError(
                f"FHIRPath Patch operation {op.number} ({op.type} {op.path}): {exc}",
                expression=[op.path],
            ) from None
    _prune(doc)
    return doc


def _single(locations: list[_Loc], op_type: str) -> _Loc:
    if not locations:
        raise _Fail("the path matches no element")
    if len(locations) > 1:
        raise _Fail(f"the path matches {len(locations)} elements; {op_type} needs exactly one")
    return locations[0]


def _op_fp_add(doc: dict[str, Any], op: _Operation, steps: tuple[_Step, ...]) -> None:
    # An add whose path matches nothing does nothing, as in HAPI: senders rely on it to set a child
    # of an optional parent with `add X.where(p.empty()) p {…}` beside `add X.p c value`.
    locations = _evaluate(doc, steps)
    if not locations:
        return
    target = _single(locations, "add")
    if not isinstance(target.value, dict):
        raise _Fail("the path points to a primitive value, which cannot hold elements")
    assert op.name is not None and op.value is not None
    obj = target.value
    key, field = _resolve_name(target.model, op.name, _suffix_of(op.value))
    value, _ = _build_value(op.value, field.model if field else None)
    existing = obj.get(key)
    repeats = field.repeats if field else isinstance(existing, list)
    if repeats and (existing is None or isinstance(existing, list)):
        _insert_item(obj, key, len(existing or ()), value)
    elif repeats:
        raise _Fail(f"'{key}' holds a single value where a list was expected")
    elif any(k in obj for k in _variants(target.model, op.name, key)):
        raise _Fail(f"'{op.name}' already has a value; add cannot overwrite it (use replace)")
    else:
        obj[key] = value


def _variants(model: type | None, name: str, key: str) -> tuple[str, ...]:
    """All JSON keys that would hold element `name`: every variant of a choice, else just key."""
    if model is None:
        return (key,)
    return _shape(model).choices.get(name, (key,))


def _list_target(
    doc: dict[str, Any], steps: tuple[_Step, ...], op_type: str
) -> tuple[dict[str, Any], str, _Field | None]:
    """For insert and move: the one object holding the list the path's last element names."""
    last = steps[-1]
    if last.kind != "name" or last.name[:1].isupper():
        raise _Fail(
            f"{op_type} needs a path ending in a repeating element, like Patient.identifier"
        )
    parent = _single(_evaluate(doc, steps[:-1]), op_type)
    if not isinstance(parent.value, dict):
        raise _Fail("the path's parent is a primitive value")
    key, field = _resolve_name(parent.model, last.name, None)
    present = parent.value.get(key)
    if (field and not field.repeats) or (present is not None and not isinstance(present, list)):
        raise _Fail(f"'{last.name}' is not a repeating element")
    return parent.value, key, field


def _op_fp_insert(doc: dict[str, Any], op: _Operation, steps: tuple[_Step, ...]) -> None:
    obj, key, field = _list_target(doc, steps, "insert")
    assert op.value is not None and op.index is not None
    items = obj.get(key, [])
    if not 0 <= op.index <= len(items):
        raise _Fail(f"index {op.index} is out of range (the list has {len(items)} items)")
    value, _ = _build_value(op.value, field.model if field else None)
    _insert_item(obj, key, op.index, value)


def _op_fp_move(doc: dict[str, Any], op: _Operation, steps: tuple[_Step, ...]) -> None:
    obj, key, _ = _list_target(doc, steps, "move")
    assert op.source is not None and op.destination is not None
    items = obj.get(key, [])
    for label, position in (("source", op.source), ("destination", op.destination)):
        if not 0 <= position < len(items):
            raise _Fail(f"{label} {position} is out of range (the list has {len(items)} items)")
    items.insert(op.destination, items.pop(op.source))
    extensions = _parallel(obj, key, len(items))
    if extensions is not None:
        extensions.insert(op.destination, extensions.pop(op.source))


def _insert_item(obj: dict[str, Any], key: str, position: int, value: Any) -> None:
    items = obj.setdefault(key, [])
    items.insert(position, value)
    extensions = _parallel(obj, key, len(items) - 1)
    if extensions is not None:
        extensions.insert(position, None)


def _parallel(obj: dict[str, Any], key: str, length: int) -> list[Any] | None:
    """The `_given` array beside `given`, padded to `length`, to keep the two aligned."""
    extensions = obj.get("_" + key)
    if not isinstance(extensions, list):
        return None
    extensions.extend([None] * (length - len(extensions)))
    return extensions


def _op_fp_replace(doc: dict[str, Any], op: _Operation, steps: tuple[_Step, ...]) -> None:
    target = _single(_evaluate(doc, steps), "replace")
    if target.container is None:
        raise _Fail("cannot replace the resource itself")
    assert op.value is not None
    value, suffix = _build_value(op.value, target.model)
    container, key = target.container, target.key
    if target.index is not None:
        container[key][target.index] = value
        return
    if target.choice and suffix and target.choice + suffix != key:
        # valueQuantity replaced by a valueString: the JSON key changes with the type
        new_key, _ = _resolve_name(target.owner, target.choice, suffix)
        del container[key]
        container.pop("_" + key, None)
        key = new_key
    container[key] = value


def _op_fp_delete(doc: dict[str, Any], op: _Operation, steps: tuple[_Step, ...]) -> None:
    locations = _evaluate(doc, steps)
    if any(loc.container is None for loc in locations):
        raise _Fail("cannot delete the resource itself")
    # Document order reversed: removing a later list item never shifts an earlier one.
    for loc in reversed(locations):
        _remove(loc)


def _remove(loc: _Loc) -> None:
    container, key = loc.container, loc.key
    assert container is not None
    if loc.index is None:
        del container[key]
        container.pop("_" + key, None)  # the primitive's id/extensions go with it
        return
    del container[key][loc.index]
    extensions = container.get("_" + key)
    if isinstance(extensions, list) and loc.index < len(extensions):
        del extensions[loc.index]  # keep the parallel `_given` array aligned


_APPLY: dict[str, Callable[[dict[str, Any], _Operation, tuple[_Step, ...]], None]] = {
    "add": _op_fp_add,
    "insert": _op_fp_insert,
    "delete": _op_fp_delete,
    "replace": _op_fp_replace,
    "move": _op_fp_move,
}
