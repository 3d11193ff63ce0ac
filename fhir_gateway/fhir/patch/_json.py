"""JSON Patch (RFC 6902) with JSON Pointers (RFC 6901), applied to resource dicts."""

from __future__ import annotations

import re
import typing
from collections.abc import Callable
from typing import Any

from fhir_gateway.errors import InvalidRequest, PatchError, PayloadTooLarge
from fhir_gateway.fhir.patch._values import _copy, _Fail, _prune

__all__ = ["apply_json_patch", "MAX_COPIED_VALUES"]

# JSON Patch "copy" doubles what it copies: 30 copies of /name into /name/- in a body of 1 KB
# would build a billion values (18 took 4.5 s). What copies may add is bounded (decision 15), as
# request bodies are by max_json_values (the same default).
MAX_COPIED_VALUES = 100_000


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
