"""What the FHIR models refuse and the JSON schema lets through, found in one walk of the JSON.

The JSON schema (``validation``) proves a resource's elements, JSON types, patterns and
required codes. The fhir.resources models prove, besides: required elements are present (a
primitive's may be replaced by its ``_x`` extension), an element of several types (``[x]``) has
at most one, and one when required, dates and times are real (no 30 February), integers fit
their type, base64 decodes. ``may_break_model_rules`` checks those with the models' own field
metadata, read once per model class, so that a resource that passes the schema and this walk
needs no model validation (which cost four to five times the schema's check).

It answers True also where it cannot tell cheaply (a leap second, a uuid): the models decide
then. It never explains: what it flags goes through the models, whose issues the client reads,
so that a wrong flag costs time, never a verdict. Only a missed refusal would change one, and
``tests/unit/fhir/test_model_rules.py`` holds the walk to the models' verdicts on the corpora,
their mutations and generated values.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

__all__ = ["may_break_model_rules"]

_ValueCheck = Callable[[Any], bool]  # True: the models may refuse this primitive value


@dataclass(frozen=True, slots=True)
class _Rules:
    """One model class's rules, by JSON key."""

    required: tuple[tuple[str, str | None], ...]  # (key, its primitive's _key or None)
    choices: tuple[tuple[tuple[str, ...], bool], ...]  # keys of one [x] element, one required
    nested: dict[str, Any]  # key → model class of its value(s); _RESOURCE: by resourceType
    values: dict[str, _ValueCheck]  # key → check of its primitive value(s)
    plain: frozenset[str]  # the other keys the model knows (the schema knows a few more)


def may_break_model_rules(resource: dict[str, Any], model: Any) -> bool:
    """True when the models of ``model`` (the resource's class) may refuse ``resource``, which
    has passed the JSON rules and the JSON schema (so its shapes and types are the schema's)."""
    stack: list[tuple[dict[str, Any], _Rules]] = [(resource, _rules(model))]
    while stack:
        node, rules = stack.pop()
        if _breaks_presence(node, rules):
            return True
        for key, value in node.items():
            check = rules.values.get(key)
            if check is not None:
                if any(item is not None and check(item) for item in _items(value)):
                    return True
                continue
            nested = rules.nested.get(key)
            if nested is not None:
                stack.extend(
                    (item, _resource_rules(item) if nested is _RESOURCE else _rules(nested))
                    for item in _items(value)
                    if isinstance(item, dict)  # None: a placeholder in a primitive's _x array
                )
            elif key not in rules.plain:
                return True  # e.g. an Extension's _valueCode: in the schema, not in the models
    return False


def _breaks_presence(node: dict[str, Any], rules: _Rules) -> bool:
    for key, extension_key in rules.required:
        if key not in node and not (extension_key and _has_extension(node.get(extension_key))):
            return True
    for keys, required in rules.choices:
        present = sum(key in node for key in keys)
        if present > 1 or (required and not present):
            return True
    return False


def _has_extension(element: Any) -> bool:
    """A required primitive may be absent when its ``_x`` carries an extension saying why."""
    return isinstance(element, dict) and bool(element.get("extension"))


def _items(value: Any) -> list[Any] | tuple[Any]:
    return value if isinstance(value, list) else (value,)


# --------------------------------------------------------------------------------------------
# The rules of a model class, from its fields' metadata
# --------------------------------------------------------------------------------------------

_RESOURCE = object()  # a field holding any resource (contained, Bundle.entry.resource)


def _resource_rules(resource: dict[str, Any]) -> _Rules:
    """A nested resource's rules: its type is known (the JSON rules refuse an unknown one)."""
    return _rules(_model_of(resource["resourceType"]))


@functools.cache
def _model_of(resource_type: str) -> Any:
    return get_fhir_model_class(resource_type)


@functools.cache
def _rules(model: Any) -> _Rules:
    required: list[tuple[str, str | None]] = []
    choices: dict[str, list[str]] = {}  # [x] element → its keys
    one_required: set[str] = set()
    nested: dict[str, Any] = {}
    values: dict[str, _ValueCheck] = {}
    plain = {"resourceType"}
    for field in model.model_fields.values():
        key = field.alias
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if field.is_required():
            required.append((key, None))
        elif extra.get("element_required"):
            required.append((key, f"_{key}"))
        if "one_of_many" in extra:
            choices.setdefault(str(extra["one_of_many"]), []).append(key)
            if extra.get("one_of_many_required"):
                one_required.add(str(extra["one_of_many"]))
        kind = _kind(field.annotation)
        if isinstance(kind, _Primitive):
            if kind.check is not None:
                values[key] = kind.check
            else:
                plain.add(key)
        elif kind is not None:
            nested[key] = kind
        else:
            plain.add(key)
    return _Rules(
        required=tuple(required),
        choices=tuple((tuple(keys), name in one_required) for name, keys in choices.items()),
        nested=nested,
        values=values,
        plain=frozenset(plain),
    )


@dataclass(frozen=True, slots=True)
class _Primitive:
    check: _ValueCheck | None  # None: the schema's pattern is all the models check


def _kind(annotation: Any) -> Any:
    """A field's annotation → a model class, _RESOURCE, a _Primitive, or None (fhir_comments)."""
    if typing.get_origin(annotation) is typing.Annotated:
        metadata = annotation.__metadata__
        return _Primitive(_primitive_check(type(metadata[0]).__name__))
    get_model = getattr(annotation, "get_model_klass", None)
    if get_model is not None:
        model = get_model()
        return _RESOURCE if model.__name__ in ("Resource", "DomainResource") else model
    for argument in typing.get_args(annotation):  # Optional[...], List[...]
        if argument is not type(None) and argument is not str:
            kind = _kind(argument)
            if kind is not None:
                return kind
    if annotation is bool:
        return _Primitive(None)
    return None


# --------------------------------------------------------------------------------------------
# Primitive values the schema's patterns let through and the models refuse
# --------------------------------------------------------------------------------------------

# The models check these with the same pattern the schema holds, or not at all.
_STRING_KINDS = frozenset(
    {"String", "Code", "Id", "Uri", "Url", "Canonical", "Oid", "Markdown", "Xhtml"}
)
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")  # the models' pattern
_LEAP_SECOND = re.compile(r"(.*T)?[0-9]{2}:[0-9]{2}:60.*")


def _impossible_date(value: str) -> bool:
    """YYYY-MM-DD that is no day (the pattern already holds month ≤ 12, day ≤ 31)."""
    if len(value) < 10:
        return False  # a year or a month: the pattern is all
    try:
        datetime.date.fromisoformat(value[:10])
    except ValueError:
        return True
    return False


def _bad_date_time(value: str) -> bool:
    if _impossible_date(value):
        return True
    if "T" not in value:
        return False
    if _LEAP_SECOND.fullmatch(value):
        return True  # valid or not, the models tell (Python's datetime has no second 60)
    try:
        datetime.datetime.fromisoformat(value)
    except ValueError:
        return True
    return False


def _bad_time(value: str) -> bool:
    if _LEAP_SECOND.fullmatch(value):
        return True
    try:
        datetime.time.fromisoformat(value)
    except ValueError:
        return True
    return False


def _integer_check(low: int, high: int) -> _ValueCheck:
    def out_of_range(value: Any) -> bool:
        # 2.0 is an integer to the models too, but rare: they decide it
        return type(value) is not int or not low <= value <= high

    return out_of_range


def _bad_decimal(value: Any) -> bool:
    return not _DECIMAL.fullmatch(str(value))


def _bad_base64(value: Any) -> bool:
    try:
        base64.b64decode(value)
    except (binascii.Error, ValueError, TypeError):
        return True
    return False


_INT32 = 2**31 - 1
_CHECKS: dict[str, _ValueCheck] = {
    "Date": _impossible_date,
    "DateTime": _bad_date_time,
    "Instant": _bad_date_time,
    "Time": _bad_time,
    "Integer": _integer_check(-(2**31), _INT32),
    "UnsignedInt": _integer_check(0, _INT32),
    "PositiveInt": _integer_check(1, _INT32),
    "Decimal": _bad_decimal,
    "EncodedBytes": _bad_base64,
}


def _always(_value: Any) -> bool:
    return True


def _primitive_check(name: str) -> _ValueCheck | None:
    """None for the string kinds; a uuid, or a type this walk does not know: the models."""
    if name in _STRING_KINDS:
        return None
    check: _ValueCheck = _CHECKS.get(name, _always)
    return check
